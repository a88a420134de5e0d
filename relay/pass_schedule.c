/*-------------------------------------------------------------------------
 *
 * pass_schedule.c
 *	  run the leader's outbox pass, and decide when the next one is due
 *
 * main.c's loop calls relay_run_pass() when next_pass_at has come, and
 * tells this file what else happened: leadership taken (_start), the
 * session lost with its sleep lock (_lost), a NOTIFY or fired reminders
 * (_wake), a failed statement (_retry).  Main thread only.
 *
 * Sleeping (the NOTIFY trap in DESIGN.md): writers NOTIFY only while the
 * relay holds the sleep lock (todo_kafka.relay_sleeping()).  States:
 *	 busy	  the last pass produced rows: pass again at once;
 *	 idle	  empty passes for under IDLE_GRACE_MS: pass every BUSY_NAP_MS
 *			  without the lock (a steady stream never pays for NOTIFY);
 *	 sleeping lock taken, then a re-check pass in a NEW window.  Writers in
 *			  that snapshot's in-progress list may have checked the lock
 *			  before we took it: while any still runs, re-check after
 *			  RECHECK_FIRST_MS, doubling up to poll_interval_ms; otherwise
 *			  wait for NOTIFY or poll_interval_ms.  Rows release the lock.
 * todo_kafka_relay_wakeups_total{reason} says what woke a sleeping relay
 * that found rows; "poll" means only the safety net caught a wake-up.
 *
 * Linger only while more rows wait: a pass that produced rows and closed
 * its window has read everything committed, so it sends the query of the
 * next window (relay_reader_prefetch_begin) and calls rd_kafka_flush(rk,
 * FLUSH_AT_END_MS) rather than wait out linger.ms.  The timeout must not be
 * 0: flush(0) drops librdkafka's flushing flag before the broker thread
 * wakes.  Figures: bench/RESULTS.md, relay, "send at once".
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
#define INFLIGHT_WAIT_MS	10	/* starting over: poll for the reports this often */

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
relay_run_pass(relay_schedule *s, relay_reader *rd, PGconn *conn,
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
		case PASS_INFLIGHT:
			/* starting over: wait for the reports of the rows in flight */
			s->next_pass_at = now + INFLIGHT_WAIT_MS;
			return SCHEDULE_OK;
		case PASS_EMPTY:
			return after_empty_pass(s, rd, conn, cfg, now) ? SCHEDULE_PROGRESS
				: SCHEDULE_PG_FAILED;
		case PASS_ERROR:
			break;
	}
	return SCHEDULE_PG_FAILED;
}
