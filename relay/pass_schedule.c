/*-------------------------------------------------------------------------
 *
 * pass_schedule.c
 *	  when the leader's next outbox pass is due, and the pass itself
 *
 * main.c's loop asks relay_schedule_pass() to run a pass when
 * next_pass_at has come, and tells this file what else happened:
 * leadership taken (relay_schedule_start), the session lost
 * (relay_schedule_lost: the sleep lock went with it), a NOTIFY or fired
 * reminders (relay_schedule_wake), a failed statement
 * (relay_schedule_retry).  Main thread only.
 *
 * Sleeping and waking (the NOTIFY trap in DESIGN.md): writers NOTIFY only
 * while the relay holds the sleep lock (todo_kafka.relay_sleeping()).  States:
 *	 busy	  the last pass produced rows: pass again at once;
 *	 idle	  empty passes for less than IDLE_GRACE_MS: pass every
 *			  BUSY_NAP_MS without the lock (a steady stream of writes never
 *			  pays for NOTIFY);
 *	 sleeping lock taken, then a re-check pass in a NEW window, so a commit
 *			  that happened before the lock is seen.  A writer that checked
 *			  the lock before we took it but commits after the re-check's
 *			  snapshot would only be caught by the safety-net poll: such a
 *			  writer is in the re-check snapshot's in-progress list, so
 *			  while any of those "suspects" is still running we re-check
 *			  after RECHECK_FIRST_MS, doubling up to poll_interval_ms.
 *			  Otherwise the next pass comes from NOTIFY or after
 *			  poll_interval_ms.  A pass that finds rows releases the lock.
 * The counter todo_kafka_relay_wakeups_total{reason} says what woke a
 * sleeping relay that then found rows (notify, recheck, reminder or poll);
 * "poll" means a wake-up was missed and only the safety net caught it.
 *
 * Linger only while more rows wait (issue 11): librdkafka holds each
 * partition's messages up to linger.ms (spec default 5 ms) hoping to fill a
 * batch.  That pays while a backlog drains (passes end on full pages:
 * PASS_MORE, or PASS_ROWS with the window still open), but a pass that
 * produced rows and closed its window has read everything committed:
 * nothing joins those batches before the next pass, so the linger is pure
 * latency.  After such a pass relay_schedule_pass() calls
 * rd_kafka_flush(rk, FLUSH_AT_END_MS) before anything else.  flush() raises librdkafka's
 * "flushing" flag (linger treated as expired), wakes the broker threads,
 * serves delivery reports like rd_kafka_poll() and returns as soon as
 * everything is acknowledged (~0.15 ms with the devbroker), else after the
 * timeout.  The timeout must not be 0: the flag is dropped when flush()
 * returns, and a broker thread that wakes after that still lingers
 * (librdkafka's rdkafka.c: "If this flush() call finishes before the broker
 * wakes up then no flushing will be performed by that broker thread");
 * measured with librdkafka 2.0.2, produce->ack p50 was 5.3 ms with poll
 * alone, 5.3 ms with flush(0), 0.16 ms with flush(1).  The main thread
 * waits about FLUSH_AT_END_MS per such pass (also when Kafka is down; ~2
 * ms on average under load, as flush() polls in whole milliseconds), while
 * new rows gather for the next pass.
 *
 * Overlap: before that flush, the query that opens the next window is
 * already sent (relay_reader_prefetch_begin), so PostgreSQL runs it while
 * the flush waits; the next pass starts from its result.  Measured at
 * 2,000 changes/s, a pass's own wait on PostgreSQL fell from ~1.5 ms to
 * ~0.4 ms; the prefetched snapshot is only taken a little earlier, and
 * nothing else uses the session in between (the result is collected right
 * after the flush; a reset drops it unused).
 *
 * IDENTIFICATION
 *	  relay/pass_schedule.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "relay.h"

#define IDLE_GRACE_MS		20
#define BUSY_NAP_MS			2
#define RECHECK_FIRST_MS	5
#define FLUSH_AT_END_MS		1	/* see "Linger only while more rows wait" */

/* leadership taken: pass at once, awake */
void
relay_schedule_start(relay_schedule *s)
{
	s->sleeping = false;
	s->rechecking = false;
	s->next_pass_at = tk_monotonic_ms();
	s->last_rows_at = s->next_pass_at;
}

/* the session is gone, and the sleep lock with it */
void
relay_schedule_lost(relay_schedule *s)
{
	s->sleeping = false;
	s->rechecking = false;
}

/* a reason to pass now (NOTIFY, reminders fired) */
void
relay_schedule_wake(relay_schedule *s, const char *reason)
{
	if (s->sleeping && !s->rechecking)
		s->wake_reason = reason;
	s->next_pass_at = tk_monotonic_ms();
}

/* a statement failed on a live session: try again after delay_ms */
void
relay_schedule_retry(relay_schedule *s, int delay_ms)
{
	s->next_pass_at = tk_monotonic_ms() + delay_ms;
}

/* what to do after a pass found nothing and closed its window */
static bool
after_empty_pass(relay_schedule *s, relay_reader *rd, PGconn *conn,
				 const relay_config *cfg, int64_t now)
{
	if (s->rechecking)
	{
		uint64_t   *xip;
		int			n = relay_reader_in_progress(rd, &xip);

		/* writers in progress at the re-check may have missed the lock */
		s->rechecking = false;
		free(s->suspects);
		s->suspects = NULL;
		s->nsuspects = 0;
		if (n > 0 && (s->suspects = malloc(sizeof(uint64_t) * n)) != NULL)
		{
			memcpy(s->suspects, xip, sizeof(uint64_t) * n);
			s->nsuspects = n;
		}
		s->recheck_delay = RECHECK_FIRST_MS;
	}
	else if (!s->sleeping)
	{
		if (now - s->last_rows_at < IDLE_GRACE_MS)
		{
			s->next_pass_at = now + BUSY_NAP_MS;
			return true;
		}
		/* go to sleep: announce it, then re-check in a fresh window */
		if (!relay_sleep_lock(conn, true))
			return false;
		s->sleeping = true;
		s->rechecking = true;
		s->wake_reason = "recheck";
		s->next_pass_at = now;
		return true;
	}

	if (s->nsuspects > 0 &&
		relay_reader_still_running(rd, s->suspects, s->nsuspects))
	{
		s->wake_reason = "recheck";
		s->next_pass_at = now + s->recheck_delay;
		s->recheck_delay *= 2;
		if (s->recheck_delay > cfg->poll_interval_ms)
			s->recheck_delay = cfg->poll_interval_ms;
		return true;
	}
	s->nsuspects = 0;
	s->wake_reason = "poll";
	s->next_pass_at = now + cfg->poll_interval_ms;
	return true;
}

/* one outbox pass, then decide when the next one is due */
relay_schedule_result
relay_schedule_pass(relay_schedule *s, relay_reader *rd, PGconn *conn,
					rd_kafka_t *rk, relay_topics *topics, const relay_config *cfg)
{
	int64_t		now = tk_monotonic_ms();

	switch (relay_reader_pass(rd, conn, rk, topics, cfg->read_batch))
	{
		case PASS_ROWS:
			/*
			 * The window closed: nothing more to batch with, send now, while
			 * PostgreSQL already runs the query of the next window.
			 */
			if (!relay_reader_window_open(rd))
			{
				if (!relay_reader_prefetch_begin(rd, conn, cfg->read_batch))
					return SCHEDULE_PG_FAILED;
				rd_kafka_flush(rk, FLUSH_AT_END_MS);
				if (!relay_reader_prefetch_end(rd, conn))
					return SCHEDULE_PG_FAILED;
			}
			if (s->sleeping)
			{
				relay_metrics_wakeup(s->wake_reason ? s->wake_reason : "poll");
				s->sleeping = false;
				s->rechecking = false;
				if (!relay_sleep_lock(conn, false))
					return SCHEDULE_PG_FAILED;
			}
			s->last_rows_at = now;
			s->next_pass_at = now;
			return SCHEDULE_PROGRESS;
		case PASS_MORE:
			s->next_pass_at = now;
			return SCHEDULE_OK;
		case PASS_BACKPRESSURE:
			/* wait for delivery reports to free queue space */
			s->next_pass_at = now + 1;
			return SCHEDULE_OK;
		case PASS_EMPTY:
			return after_empty_pass(s, rd, conn, cfg, now) ? SCHEDULE_PROGRESS
				: SCHEDULE_PG_FAILED;
		case PASS_ERROR:
			break;
	}
	return SCHEDULE_PG_FAILED;
}
