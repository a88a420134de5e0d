/*-------------------------------------------------------------------------
 *
 * project.c
 *	  todo-kafka-project: the read model of tasks (todo_kafka.task_view),
 *	  built from the task events topic alone, with snapshots and replay
 *
 * A handler on the consumer runtime (consumers/runtime/consumer.h).  Each
 * batch becomes ONE call of todo_kafka.project_apply(topic, events)
 * (extension 0.4.0, granted to todo_kafka_projector): the view rows AND the
 * partitions' next offsets are written in that one transaction, so the
 * projection is exactly-once without Kafka's committed offsets (STYLE 38e).
 * SIGKILL at any point loses either both or neither.  Where each assigned
 * partition starts comes from the database too (stored_offsets->load:
 * todo_kafka.project_offsets()); events below a partition's stored offset
 * are skipped by project_apply, so a redelivery is never applied twice.
 * An event dead-lettered as the last of its partition moves the stored
 * offset too (stored_offsets->skip_dead_letter), so a restart does not dead-letter it
 * again.
 *
 * What is projected: task.<created|updated|completed|deleted|
 * recurring-created> events of the tasks table (source task_source); the
 * view row is the event's data.task_data (the whole row image; a delete
 * removes the row).  Other events (other types, a tracked application
 * table on the same stream) only advance the offsets.  Timestamps and
 * intervals are read by PostgreSQL, so any RFC 3339 offset ("Z" or
 * "+02:00") and PostgreSQL or ISO 8601 interval text work.  An event of
 * ours without a uuid task_id or an object task_data is invalid input
 * (dead-lettered at once).
 *
 * Modes (command line only, so a config file cannot make every restart a
 * rebuild; the setup hook runs them before anything is consumed):
 *	 --snapshot	 take a snapshot now (project_snapshot) and exit 0;
 *	 --replay	 rebuild from the start of the topic: empty the view and the
 *				 offsets, then run.  When the topic no longer holds its
 *				 first events (a partition's low watermark > 0: retention
 *				 deleted them), the newest snapshot that covers the gap is
 *				 restored instead; without one the replay is refused with
 *				 exit 2: it would build a silently incomplete read model.
 *	 --restore	 restore the newest snapshot and replay only what came after
 *				 (exit 2 when there is none, or events after it are gone).
 * A normal start makes the same check: stored offsets below the low
 * watermark (the projector was stopped longer than the retention) refuse
 * with exit 2, unless --allow-gap says an incomplete model is acceptable.
 *
 * Snapshots: worker 0 takes one every snapshot_interval_s (0: never) and
 * keeps the newest snapshots_keep.  project_snapshot() blocks applies
 * while it copies, so rows and offsets of a snapshot agree.
 *
 * Files: project.c (this: options, the service table, main and the
 * modes' command line), project_apply.c (validation and the batch apply
 * path), project_modes.c (offsets, the setup hook's modes and gap check,
 * snapshots), project_int.h (what they share).
 *
 * IDENTIFICATION
 *	  consumers/project/project.c
 *
 *-------------------------------------------------------------------------
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "consumer.h"
#include "project_int.h"

project_mode project_run_mode = MODE_RUN;
bool		project_allow_gap = false;

#define OFF(f) offsetof(project_config, f)

static const tk_option project_options[] = {
	{"snapshot_interval_s", TK_OPT_INT, OFF(snapshot_interval_s), "3600", 0, 31536000,
	"seconds between snapshots of the read model; 0: only --snapshot"},
	{"snapshots_keep", TK_OPT_INT, OFF(snapshots_keep), "3", 1, 1000,
	"snapshots kept; older ones are pruned"},
	{"task_source", TK_OPT_STRING, OFF(task_source), "/todo_kafka/todo_kafka.tasks", 0, 0,
	"CloudEvents source of the events projected; empty: any source"},
	{NULL}
};

static const tk_cli_option project_cli_options[] = {
	{"snapshot-interval-s", "snapshot_interval_s", true,
	"--snapshot-interval-s=SECS  seconds between snapshots (default 3600, 0: off)"},
	{"snapshots-keep", "snapshots_keep", true,
	"--snapshots-keep=N     snapshots kept, older ones pruned (default 3)"},
	{NULL}
};

static const char *const project_streams[] = {TK_STREAM_TASK_EVENTS, NULL};

static const tkc_service project_service = {
	.name = "project",
	.summary = "keeps the read model of tasks (todo_kafka.task_view) from the task events.",
	.db_role = "todo_kafka_projector",
	.streams = project_streams,
	.options = project_options,
	.config_size = sizeof(project_config),
	.cli_options = project_cli_options,
	.validate = project_validate,
	.sink = project_apply_batch,
	.sink_unit = "events",
	.periodic = project_periodic,
	.periodic_ms = 1000,
	.stored_offsets = &(const tkc_offset_store) {
		.load = project_start_offset,
		.skip_dead_letter = project_dead_lettered,
	},
	.setup = project_setup,
	.notes =
	"Modes (command line only):\n"
	"      --replay               rebuild the read model from the start of the topic;\n"
	"                             refused (exit 2) when retention already deleted\n"
	"                             events no snapshot covers\n"
	"      --restore              start from the newest snapshot, replay what came after\n"
	"      --snapshot             take a snapshot now and exit\n"
	"      --allow-gap            accept a read model missing events retention deleted\n"
	"A replay from zero is only complete within the topic's retention (7 days).\n\n"
	"Examples:\n"
	"  todo-kafka-project -d 'dbname=app' -b kafka:9092\n"
	"  todo-kafka-project -d 'dbname=app' -b kafka:9092 --snapshot\n"
	"  todo-kafka-project -d 'dbname=app' -b kafka:9092 --restore\n"
	"Read:  SELECT * FROM todo_kafka.task_view WHERE user_id = 'alice';\n",
};

int
main(int argc, char **argv)
{
	int			n = 0;

	/* the modes are taken out of argv; the runtime parses the rest */
	for (int i = 0; i < argc; i++)
	{
		project_mode m = MODE_RUN;

		if (i > 0 && strcmp(argv[i], "--replay") == 0)
			m = MODE_REPLAY;
		else if (i > 0 && strcmp(argv[i], "--restore") == 0)
			m = MODE_RESTORE;
		else if (i > 0 && strcmp(argv[i], "--snapshot") == 0)
			m = MODE_SNAPSHOT;
		else if (i > 0 && strcmp(argv[i], "--allow-gap") == 0)
		{
			project_allow_gap = true;
			continue;
		}
		if (m == MODE_RUN)
		{
			argv[n++] = argv[i];
			continue;
		}
		if (project_run_mode != MODE_RUN && project_run_mode != m)
		{
			fprintf(stderr, "todo-kafka-project: --replay, --restore and --snapshot exclude each other\n"
					"Try \"todo-kafka-project --help\" for more information.\n");
			return TK_EXIT_USAGE;
		}
		project_run_mode = m;
	}
	argv[n] = NULL;
	return tkc_main(&project_service, n, argv);
}
