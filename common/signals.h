/*-------------------------------------------------------------------------
 *
 * signals.h
 *	  shutdown and reload flags for the todo_kafka daemons
 *
 * IDENTIFICATION
 *	  common/signals.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_SIGNALS_H
#define TK_SIGNALS_H

#include <signal.h>
#include <stdbool.h>

/* how many SIGTERM/SIGINT arrived; a second one means "fast exit" */
extern volatile sig_atomic_t tk_shutdown_requested;
/* SIGHUP arrived and has not been acted on yet */
extern volatile sig_atomic_t tk_reload_requested;

extern void tk_signals_install(bool exit_on_second, int second_exit_code);

#endif							/* TK_SIGNALS_H */
