/*-------------------------------------------------------------------------
 *
 * project.c
 *	  todo-kafka-project: the read model of tasks (todo_kafka.task_view),
 *	  built from the task events topic alone, with snapshots and replay
 *
 * A sink service on the runtime (consumers/runtime/consumer.h).  A batch is
 * ONE call of todo_kafka.project_apply() (extension/sql/12_projection.sql):
 * view rows AND next offsets in one transaction, so the projection is
 * exactly-once without Kafka's offsets (STYLE 38e).  Partitions start where
 * the database says (consumers/runtime/sink_offsets.c).
 *
 * Modes (command line only, so a config file cannot make every restart a
 * rebuild; run by the setup hook before anything is consumed):
 *	 --snapshot	 take a snapshot now and exit 0;
 *	 --replay	 empty view and offsets, rebuild from the topic; if retention
 *				 deleted its start, from the newest snapshot covering the gap,
 *				 else refuse (exit 2);
 *	 --restore	 newest snapshot, then what came after (exit 2 if impossible).
 * A normal start below the low watermark refuses (exit 2) unless
 * --allow-gap.  Worker 0 snapshots every snapshot_interval_s, keeping
 * snapshots_keep; project_snapshot() blocks applies while it copies.
 *
 * Files: project.c (options, service table, main), project_apply.c (what is
 * projected, batch apply), project_modes.c (offsets, modes, gap check,
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
