/*-------------------------------------------------------------------------
 *
 * project_int.h
 *	  todo-kafka-project: what its files share (private to consumers/project/)
 *
 * project.c is the service table, its options and main (which takes the
 * modes out of argv); project_apply.c is the event path (validate, and
 * one project_apply() call per batch); project_modes.c is everything
 * about where the projection starts: stored offsets, the setup hook's
 * modes and gap check, snapshots.
 *
 * The mode and --allow-gap are set by main before tkc_main() starts any
 * thread, and only read afterwards (by the setup hook).
 *
 * IDENTIFICATION
 *	  consumers/project/project_int.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_PROJECT_INT_H
#define TK_PROJECT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "consumer.h"

typedef struct project_config
{
	int			snapshot_interval_s;
	int			snapshots_keep;
	char	   *task_source;
} project_config;

typedef enum project_mode
{
	MODE_RUN,
	MODE_SNAPSHOT,
	MODE_REPLAY,
	MODE_RESTORE
} project_mode;

/* project.c: from the command line */
extern project_mode project_run_mode;
extern bool project_allow_gap;

/* project_apply.c: the runtime's validate, sink and skip_dead_letter hooks */
extern bool project_validate(const void *config, tkc_event *ev);
extern tkc_result project_apply_batch(tkc_worker *w, tkc_event **evs, int n, int *applied);
extern tkc_result project_dead_lettered(tkc_worker *w, tkc_event *ev);

/* project_modes.c: the load (stored offsets), setup and periodic hooks */
extern bool project_start_offset(tkc_worker *w, const char *topic, int32_t partition,
								 int64_t *offset);
extern int	project_setup(tkc_worker *w);
extern void project_periodic(tkc_worker *w);

#endif							/* TK_PROJECT_INT_H */
