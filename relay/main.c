/*-------------------------------------------------------------------------
 *
 * main.c
 *	  todo-kafka-relay: stream the todo_kafka outbox to Kafka
 *
 * One thread runs everything that touches PostgreSQL or the row table: the
 * event loop below.  librdkafka delivers its reports through
 * rd_kafka_poll() on this thread; libmicrohttpd serves /metrics on its own
 * thread from relay_metrics.c's locked counters.
 *
 * The loop (pgbouncer style: signal handlers only set flags, the loop acts):
 *	 1. signals: SIGHUP reloads the config; SIGTERM/SIGINT drain (stop
 *		reading, wait for acks up to flush_timeout_ms, store the position,
 *		exit 0); a second one cuts the drain short (exit 1: the next
 *		relay re-sends rows past the stored position);
 *	 2. rd_kafka_poll(rk, 0): delivery reports settle rows;
 *	 3. no connection: reconnect with capped exponential backoff;
 *	 4. standby: try the leadership lock every standby_retry_ms; once
 *		leader, LISTEN, load the topic map, create missing topics (once),
 *		load the stored position (position.c) and read from there;
 *	 5. leader: move poison rows to dead_letters, send a position store
 *		(its own session, not waited for; it truncates published
 *		partitions) at most every position_interval_ms, fire due
 *		reminders (reminders.c), run an outbox pass when pass_schedule.c
 *		says it is due;
 *	 6. poll() on the PostgreSQL socket and librdkafka's report pipe until
 *		the next pass, reminder or store, at most 100 ms; then
 *		PQconsumeInput and drain notifications.
 * Fired reminders wrote events, so they make the next pass due at once; a
 * pass that sees a reminder scheduled or cancelled makes reminders.c
 * re-query its deadline.
 *
 * IDENTIFICATION
 *	  relay/main.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "signals.h"
#include "clock.h"
#include "config.h"
#include "otlp.h"
#include "relay.h"

#define LOOP_WAIT_MAX_MS	100

volatile sig_atomic_t relay_fatal_error = 0;

/* the relay's state, owned by the main thread */
typedef struct relay_state
{
	tk_cli		cli;
	relay_config cfg;
	rd_kafka_t *rk;
	int			kafka_fd[2];	/* librdkafka writes to [1] when reports wait */
	PGconn	   *conn;
	bool		leader;
	bool		standby_logged;
	relay_reader *reader;
	relay_topics topics;
	bool		topics_ensured;
	tk_backoff	backoff;
	int64_t		next_connect_at;
	int64_t		next_leader_try;
	int64_t		next_stats_at;
	relay_schedule sched;		/* when the next outbox pass is due */
} relay_state;

/* forget the PostgreSQL session: leadership and the sleep lock go with it */
static void
drop_connection(relay_state *st, const char *why)
{
	int			delay = tk_backoff_next(&st->backoff);

	tk_log(TK_LOG_WARNING, "%s; reconnecting in %d ms", why, delay);
	relay_metrics_error("postgres");
	PQfinish(st->conn);
	st->conn = NULL;
	st->leader = false;
	relay_schedule_lost(&st->sched);
	st->standby_logged = false;
	relay_position_close();
	relay_reader_reset(st->reader);
	st->next_connect_at = tk_monotonic_ms() + delay;
}

/* a statement failed: reconnect if the session is gone, else retry later */
static void
pg_failed(relay_state *st)
{
	if (st->conn == NULL || PQstatus(st->conn) != CONNECTION_OK)
		drop_connection(st, "lost connection to PostgreSQL");
	else
	{
		int			delay = tk_backoff_next(&st->backoff);

		relay_metrics_error("postgres");
		relay_reader_reset(st->reader);
		relay_schedule_retry(&st->sched, delay);
	}
}

/*
 * Take up leadership: the topic map, then the stored position.  If either
 * cannot be read (an extension older than this relay, a transient error)
 * the session is dropped, and leadership with it: leading without a
 * position would publish but never store one, so nothing would ever be
 * truncated and a restart would send everything again.  The reconnect
 * backoff then spaces the retries (and the error lines), and is reset only
 * once leading has really started.
 */
static void
become_leader(relay_state *st)
{
	tk_log(TK_LOG_INFO, "acquired leadership; streaming the outbox");
	/* missing topics are created (and recorded) once per process */
	if (!relay_topics_load(st->conn, st->rk, &st->topics,
						   !st->topics_ensured && st->cfg.create_topics))
	{
		drop_connection(st, "could not read the topic map; giving up leadership");
		return;
	}
	st->topics_ensured = true;
	/* start where the last leader's stored position says */
	if (!relay_position_load(st->conn))
	{
		drop_connection(st, "could not read the stored position; giving up leadership");
		return;
	}
	tk_backoff_reset(&st->backoff);
	relay_position_open(st->cfg.d.conninfo);
	relay_reader_reset(st->reader);
	relay_reminders_reset();	/* fires what fell due while nobody led */
	relay_schedule_start(&st->sched);
	st->next_stats_at = 0;
}

static void
reload_config(relay_state *st)
{
	relay_config fresh;
	char		err[1024];

	if (!relay_config_load(&fresh, &st->cli, err, sizeof(err)))
	{
		tk_log(TK_LOG_ERROR, "could not reload configuration, keeping the old one: %s", err);
		return;
	}
	tk_log(TK_LOG_INFO, "got SIGHUP, configuration reloaded");
	tk_log_set_level(fresh.d.log_level);
	if (fresh.reminders && !st->cfg.reminders)
		relay_reminders_reset();
	if (!tk_kvlist_equal(&fresh.d.kafka, &st->cfg.d.kafka))
		tk_log(TK_LOG_WARNING, "Kafka settings changed; they take effect when the relay restarts");
	if (strcmp(fresh.d.otlp_endpoint, st->cfg.d.otlp_endpoint) != 0)
		tk_log(TK_LOG_WARNING, "otlp_endpoint changed; it takes effect when the relay restarts");
	if (strcmp(fresh.d.metrics_listen, st->cfg.d.metrics_listen) != 0)
	{
		relay_metrics_stop();
		if (!relay_metrics_start(fresh.d.metrics_listen, err, sizeof(err)))
			tk_log(TK_LOG_ERROR, "%s", err);
	}
	if (strcmp(fresh.d.conninfo, st->cfg.d.conninfo) != 0 && st->conn != NULL)
	{
		relay_config_free(&st->cfg);
		st->cfg = fresh;
		drop_connection(st, "database connection settings changed");
		st->next_connect_at = tk_monotonic_ms();
		return;
	}
	relay_config_free(&st->cfg);
	st->cfg = fresh;
}

/*
 * Wait for PostgreSQL input, Kafka reports or the deadline (at most
 * LOOP_WAIT_MAX_MS).  Notifications make the next pass due at once.
 */
static void
wait_events(relay_state *st, int64_t deadline)
{
	struct pollfd fds[2];
	int			nfds = 0;
	int64_t		now = tk_monotonic_ms();
	int			timeout = (int) (deadline - now);
	char		drain[256];

	if (timeout < 0)
		timeout = 0;
	if (timeout > LOOP_WAIT_MAX_MS)
		timeout = LOOP_WAIT_MAX_MS;
	fds[nfds].fd = st->kafka_fd[0];
	fds[nfds++].events = POLLIN;
	if (st->conn)
	{
		fds[nfds].fd = PQsocket(st->conn);
		fds[nfds++].events = POLLIN;
	}
	if (poll(fds, nfds, timeout) < 0 && errno != EINTR)
		tk_log(TK_LOG_ERROR, "poll failed: %s", strerror(errno));
	if (fds[0].revents & POLLIN)
		while (read(st->kafka_fd[0], drain, sizeof(drain)) > 0)
			;
	if (nfds > 1 && fds[1].revents)
	{
		int			n = relay_drain_notifies(st->conn);

		if (n < 0)
			drop_connection(st, "lost connection to PostgreSQL");
		else if (n > 0 && st->leader)
			relay_schedule_wake(&st->sched, "notify");
	}
}

/* one outbox pass; pass_schedule.c decides when the next one is due */
static void
leader_pass(relay_state *st)
{
	switch (relay_run_pass(&st->sched, st->reader, st->conn, st->rk,
						   &st->topics, &st->cfg))
	{
		case SCHEDULE_PROGRESS:
			tk_backoff_reset(&st->backoff);
			break;
		case SCHEDULE_PG_FAILED:
			pg_failed(st);
			break;
		case SCHEDULE_OK:
			break;
	}
}

static void
run_loop(relay_state *st)
{
	while (!tk_shutdown_requested && !relay_fatal_error)
	{
		int64_t		now;
		int64_t		deadline;

		if (tk_reload_requested)
		{
			tk_reload_requested = 0;
			reload_config(st);
		}
		rd_kafka_poll(st->rk, 0);
		relay_producer_service(st->rk, &st->topics);
		relay_metrics_state(st->conn != NULL, st->leader, relay_kafka_up(),
							relay_rows_in_flight());
		now = tk_monotonic_ms();

		if (st->conn == NULL)
		{
			if (now >= st->next_connect_at)
			{
				st->conn = relay_pg_connect(st->cfg.d.conninfo);
				if (st->conn == NULL)
					st->next_connect_at = now + tk_backoff_next(&st->backoff);
				else
				{
					relay_trace_connected(st->conn);
					st->next_leader_try = now;
				}
			}
			wait_events(st, st->conn ? now : st->next_connect_at);
			continue;
		}

		if (!st->leader)
		{
			if (now >= st->next_leader_try)
			{
				if (!relay_try_leadership(st->conn, &st->leader))
				{
					pg_failed(st);
					continue;
				}
				if (st->leader)
				{
					become_leader(st);
					continue;
				}
				if (!st->standby_logged)
					tk_log(TK_LOG_INFO, "another relay holds leadership; waiting as standby");
				st->standby_logged = true;
				st->next_leader_try = now + st->cfg.standby_retry_ms;
			}
			wait_events(st, st->next_leader_try);
			continue;
		}

		if (relay_take_rescan())
			relay_reader_reset(st->reader);
		if (!relay_move_dead(st->conn))
		{
			pg_failed(st);
			continue;
		}
		relay_position_store(false, st->cfg.position_interval_ms);
		if (now >= st->next_stats_at)
		{
			if (!relay_query_backlog(st->conn) && PQstatus(st->conn) != CONNECTION_OK)
			{
				pg_failed(st);
				continue;
			}
			st->next_stats_at = now + st->cfg.stats_interval_ms;
		}
		/* fire due reminders; their events leave with the next pass, now */
		if (st->cfg.reminders && now >= relay_reminders_due_at())
		{
			int			fired = relay_reminders_fire(st->conn, st->cfg.reminder_grace);

			if (fired < 0)
			{
				pg_failed(st);
				continue;
			}
			if (fired > 0)
				relay_schedule_wake(&st->sched, "reminder");
		}
		if (now >= st->sched.next_pass_at)
		{
			leader_pass(st);
			if (st->conn == NULL || st->sched.next_pass_at <= tk_monotonic_ms())
				continue;
		}

		deadline = st->sched.next_pass_at;
		/* sleep no longer than until the next reminder is due */
		if (st->cfg.reminders && relay_reminders_due_at() < deadline)
			deadline = relay_reminders_due_at();
		{
			int64_t		d = relay_position_store_due_ms(st->cfg.position_interval_ms);

			if (d >= 0 && now + d < deadline)
				deadline = now + d;
		}
		wait_events(st, deadline);
	}
}

/* SIGTERM: stop reading, wait for acks, store the position */
static int
drain_and_exit(relay_state *st)
{
	int64_t		deadline = tk_monotonic_ms() + st->cfg.flush_timeout_ms;
	int			left;
	int			code = RELAY_EXIT_OK;

	if (relay_fatal_error)
		code = RELAY_EXIT_FAILURE;
	else
		tk_log(TK_LOG_INFO, "got shutdown request, draining: waiting for %d messages to be acknowledged",
			   rd_kafka_outq_len(st->rk));
	while (!relay_fatal_error && rd_kafka_outq_len(st->rk) > 0 &&
		   tk_monotonic_ms() < deadline && tk_shutdown_requested < 2)
	{
		rd_kafka_poll(st->rk, 100);
		relay_producer_service(st->rk, &st->topics);
	}
	if (tk_shutdown_requested >= 2)
	{
		tk_log(TK_LOG_WARNING, "got second shutdown request, fast exit");
		code = RELAY_EXIT_FAILURE;
	}
	left = rd_kafka_outq_len(st->rk);
	if (left > 0)
	{
		tk_log(TK_LOG_WARNING, "%d messages not acknowledged; their rows are sent again by the next relay",
			   left);
		rd_kafka_purge(st->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(st->rk, 0);
	}
	if (st->conn && st->leader && tk_shutdown_requested < 2)
	{
		if (!relay_move_dead(st->conn))
			tk_log(TK_LOG_WARNING, "could not move poison rows to todo_kafka.dead_letters; they are sent again");
		relay_position_store(true, 0);
	}
	relay_position_close();

	relay_topics_free(&st->topics);
	rd_kafka_destroy(st->rk);
	PQfinish(st->conn);
	relay_metrics_stop();
	tk_otlp_stop();
	tk_log(TK_LOG_INFO, "relay stopped");
	return code;
}

int
main(int argc, char **argv)
{
	relay_state st;
	char		err[1024];
	int			rc;

	memset(&st, 0, sizeof(st));
	rc = tk_cli_parse(&relay_spec, argc, argv, &st.cli);
	if (rc >= 0)
		return rc;
	if (!relay_config_load(&st.cfg, &st.cli, err, sizeof(err)))
	{
		fprintf(stderr, "todo-kafka-relay: %s\n", err);
		return RELAY_EXIT_USAGE;
	}
	if (st.cli.show_config)
	{
		relay_config_print(&st.cfg, stdout);
		return RELAY_EXIT_OK;
	}
	tk_log_set_level(st.cfg.d.log_level);
	tk_signals_install(false, 1);
	relay_metrics_init();

	st.rk = relay_producer_create(&st.cfg, err, sizeof(err));
	if (st.rk == NULL)
	{
		fprintf(stderr, "todo-kafka-relay: %s\n", err);
		return RELAY_EXIT_USAGE;
	}
	if (pipe(st.kafka_fd) != 0)
	{
		tk_log(TK_LOG_FATAL, "could not create pipe: %s", strerror(errno));
		return RELAY_EXIT_FAILURE;
	}
	fcntl(st.kafka_fd[0], F_SETFL, O_NONBLOCK);
	fcntl(st.kafka_fd[1], F_SETFL, O_NONBLOCK);
	{
		rd_kafka_queue_t *mainq = rd_kafka_queue_get_main(st.rk);

		rd_kafka_queue_io_event_enable(mainq, st.kafka_fd[1], "1", 1);
		rd_kafka_queue_destroy(mainq);
	}
	if (!relay_metrics_start(st.cfg.d.metrics_listen, err, sizeof(err)))
	{
		tk_log(TK_LOG_FATAL, "%s", err);
		rd_kafka_destroy(st.rk);
		return RELAY_EXIT_FAILURE;
	}

	if (!tk_otlp_start(st.cfg.d.otlp_endpoint, relay_spec.program, err, sizeof(err)))
	{
		tk_log(TK_LOG_FATAL, "%s", err);
		rd_kafka_destroy(st.rk);
		return RELAY_EXIT_FAILURE;
	}
	tk_daemon_log_start(&relay_spec, &st.cfg.d);

	st.reader = relay_reader_create();
	tk_backoff_init(&st.backoff, 100, st.cfg.reconnect_max_ms, (uint64_t) getpid());
	run_loop(&st);
	return drain_and_exit(&st);
}
