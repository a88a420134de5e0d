/*-------------------------------------------------------------------------
 *
 * signals.c
 *	  shutdown and reload flags for the todo_kafka daemons
 *
 * The handlers only set flags (STYLE.md rule 30, pgbouncer's way): the
 * daemons' main loops act on tk_shutdown_requested and tk_reload_requested.
 * SIGTERM and SIGINT count up, so a loop that is draining can tell a second
 * request ("stop draining, exit now") from the first.  A program with no
 * draining to cut short can ask for _exit() on the second signal instead,
 * which is async-signal-safe.  SIGPIPE is ignored: a reader that went away
 * (a closed metrics client, a control FIFO) must not kill the daemon.
 *
 * IDENTIFICATION
 *	  common/signals.c
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>
#include <unistd.h>

#include "signals.h"

volatile sig_atomic_t tk_shutdown_requested = 0;
volatile sig_atomic_t tk_reload_requested = 0;

static bool signals_exit_on_second = false;
static int	signals_second_exit_code = 1;

static void
handle_shutdown(int sig)
{
	(void) sig;
	if (tk_shutdown_requested > 0 && signals_exit_on_second)
		_exit(signals_second_exit_code);
	tk_shutdown_requested++;
}

static void
handle_reload(int sig)
{
	(void) sig;
	tk_reload_requested = 1;
}

void
tk_signals_install(bool exit_on_second, int second_exit_code)
{
	struct sigaction sa;

	signals_exit_on_second = exit_on_second;
	signals_second_exit_code = second_exit_code;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = handle_shutdown;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = handle_reload;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}
