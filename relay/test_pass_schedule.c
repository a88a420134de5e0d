/*-------------------------------------------------------------------------
 *
 * test_pass_schedule.c
 *	  unit tests of the leader's pass schedule (pass_schedule.c), no PG
 *	  or Kafka
 *
 * pass_schedule.c is linked with the stubs below instead of the outbox
 * reader, the sleep lock, the metrics, librdkafka's flush and the clock:
 * each test sets what the next pass returns, what the reader reports
 * (window open, transactions in progress, still running) and the time,
 * then checks when the next pass is due, whether the relay sleeps (and
 * took or released the lock), and which wake-up reason was counted.
 * The rules are the file header's of pass_schedule.c: busy, idle within
 * the grace, sleeping with a re-check, suspects re-checked with a
 * doubling delay capped at the poll interval, the poll as safety net, and
 * the flush (with the next window's query sent first) only after a pass
 * that produced rows and closed its window.
 *
 * IDENTIFICATION
 *	  relay/test_pass_schedule.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>

#include "relay.h"
#include "test_tap.h"

/* ---- stubs: what the schedule sees and does ---- */

static int64_t now_ms = 1000;
static relay_pass_result next_result = PASS_EMPTY;
static bool window_open = false;
static uint64_t in_progress[4];
static int	nin_progress = 0;
static bool still_running = false;
static bool lock_ok = true;
static int	lock_taken = 0;			/* calls with take = true */
static int	lock_released = 0;		/* calls with take = false */
static const char *woke_for = NULL; /* the last wake-up counted */
static char calls[64];				/* prefetch begin (b), flush (f), end (e) */

int64_t
tk_monotonic_ms(void)
{
	return now_ms;
}

relay_pass_result
relay_reader_pass(relay_reader *rd, PGconn *conn, rd_kafka_t *rk, relay_topics *topics, int batch)
{
	return next_result;
}

bool
relay_reader_window_open(relay_reader *rd)
{
	return window_open;
}

int
relay_reader_in_progress(relay_reader *rd, uint64_t **xids)
{
	*xids = in_progress;
	return nin_progress;
}

bool
relay_reader_still_running(relay_reader *rd, const uint64_t *xids, int n)
{
	return still_running;
}

bool
relay_reader_prefetch_begin(relay_reader *rd, PGconn *conn, int batch)
{
	strcat(calls, "b");
	return true;
}

bool
relay_reader_prefetch_end(relay_reader *rd, PGconn *conn)
{
	strcat(calls, "e");
	return true;
}

rd_kafka_resp_err_t
rd_kafka_flush(rd_kafka_t *rk, int timeout_ms)
{
	strcat(calls, timeout_ms > 0 ? "f" : "0");
	return RD_KAFKA_RESP_ERR_NO_ERROR;
}

bool
relay_sleep_lock(PGconn *conn, bool take)
{
	if (take)
		lock_taken++;
	else
		lock_released++;
	return lock_ok;
}

void
relay_metrics_wakeup(const char *reason)
{
	woke_for = reason;
}

/* ---- helpers ---- */

static relay_schedule s;
static relay_config cfg;

static relay_schedule_result
pass(relay_pass_result r)
{
	next_result = r;
	calls[0] = '\0';
	return relay_run_pass(&s, NULL, NULL, NULL, NULL, &cfg);
}

/* an idle relay past the grace: takes the lock, then its re-check pass */
static void
go_to_sleep(void)
{
	now_ms += 1000;
	pass(PASS_EMPTY);
	pass(PASS_EMPTY);
}

int
main(void)
{
	relay_schedule_result r;
	int64_t		d1,
				d2,
				d3;
	bool		capped;

	cfg.poll_interval_ms = 100;
	cfg.read_batch = 1000;

	relay_schedule_start(&s);
	ok(s.next_pass_at == now_ms && !s.sleeping, "leadership: pass at once, awake");

	/* busy */
	window_open = true;
	r = pass(PASS_ROWS);
	ok(r == SCHEDULE_PROGRESS && s.next_pass_at == now_ms, "rows: pass again at once");
	ok(calls[0] == '\0', "rows with the window still open: no flush (the linger may fill batches)");
	window_open = false;
	pass(PASS_ROWS);
	ok(strcmp(calls, "bfe") == 0, "rows that closed the window: next window's query sent, flush (>0 ms), collect");
	r = pass(PASS_MORE);
	ok(r == SCHEDULE_OK && s.next_pass_at == now_ms, "more: pass again at once");
	r = pass(PASS_BACKPRESSURE);
	ok(r == SCHEDULE_OK && s.next_pass_at == now_ms + 1, "back-pressure: pass after a millisecond");
	ok(pass(PASS_ERROR) == SCHEDULE_PG_FAILED, "a failed pass reports the failure");

	/* idle within the grace: short naps, no lock */
	now_ms += 5;
	r = pass(PASS_EMPTY);
	ok(r == SCHEDULE_PROGRESS && s.next_pass_at == now_ms + 2 && !s.sleeping && lock_taken == 0,
	   "empty within the idle grace: nap, no sleep lock");

	/* past the grace: lock, then a re-check pass in a new window at once */
	now_ms += 1000;
	pass(PASS_EMPTY);
	ok(s.sleeping && lock_taken == 1 && s.next_pass_at == now_ms,
	   "empty past the grace: take the sleep lock and re-check at once");

	/* the re-check finds nothing and no writer in progress: poll later */
	nin_progress = 0;
	pass(PASS_EMPTY);
	ok(s.sleeping && s.next_pass_at == now_ms + cfg.poll_interval_ms && s.nsuspects == 0,
	   "re-check empty, no writer in progress: next pass at the safety-net poll");
	pass(PASS_EMPTY);
	ok(lock_taken == 1 && s.next_pass_at == now_ms + cfg.poll_interval_ms,
	   "asleep: the lock is not taken again; poll interval again");

	/* a NOTIFY wakes it; the pass that finds rows says why and releases the lock */
	relay_schedule_wake(&s, "notify");
	ok(s.next_pass_at == now_ms, "a wake-up: pass at once");
	window_open = true;
	pass(PASS_ROWS);
	ok(!s.sleeping && lock_released == 1 && woke_for && strcmp(woke_for, "notify") == 0,
	   "rows after a NOTIFY: counted as notify, lock released, awake");

	/* suspects: writers in progress at the re-check are re-checked, doubling, capped */
	in_progress[0] = 700;
	in_progress[1] = 701;
	nin_progress = 2;
	still_running = true;
	go_to_sleep();
	d1 = s.next_pass_at - now_ms;
	ok(s.nsuspects == 2 && d1 == 5 && strcmp(s.wake_reason, "recheck") == 0,
	   "writers in progress at the re-check: re-check after 5 ms");
	pass(PASS_EMPTY);
	d2 = s.next_pass_at - now_ms;
	pass(PASS_EMPTY);
	d3 = s.next_pass_at - now_ms;
	ok(d2 == 10 && d3 == 20, "... then 10, 20 ms (doubling)");
	capped = true;
	for (int i = 0; i < 10; i++)
	{
		pass(PASS_EMPTY);
		if (s.next_pass_at - now_ms > cfg.poll_interval_ms)
			capped = false;
	}
	ok(capped && s.next_pass_at - now_ms == cfg.poll_interval_ms, "... capped at the poll interval");
	relay_schedule_wake(&s, "notify");
	ok(strcmp(s.wake_reason, "notify") == 0, "a NOTIFY while asleep is the reason");
	still_running = false;
	pass(PASS_EMPTY);
	ok(s.nsuspects == 0 && strcmp(s.wake_reason, "poll") == 0 &&
	   s.next_pass_at == now_ms + cfg.poll_interval_ms,
	   "suspects finished: the next pass is the poll");
	pass(PASS_ROWS);
	ok(woke_for && strcmp(woke_for, "poll") == 0, "rows found by the poll are counted as poll (a missed wake-up)");

	/* a wake-up during the re-check does not replace its reason */
	nin_progress = 0;
	now_ms += 1000;
	pass(PASS_EMPTY);
	ok(s.rechecking, "the re-check pass is due");
	relay_schedule_wake(&s, "reminder");
	pass(PASS_ROWS);
	ok(strcmp(woke_for, "recheck") == 0, "rows found by the re-check are counted as recheck");

	/* the session is lost: the lock went with it */
	go_to_sleep();
	relay_schedule_lost(&s);
	ok(!s.sleeping && !s.rechecking, "session lost: awake, no re-check pending");
	relay_schedule_start(&s);

	/* the lock cannot be taken: a statement failed */
	lock_ok = false;
	now_ms += 1000;
	ok(pass(PASS_EMPTY) == SCHEDULE_PG_FAILED && !s.sleeping, "the sleep lock failing is a failed pass");
	lock_ok = true;

	relay_schedule_retry(&s, 250);
	ok(s.next_pass_at == now_ms + 250, "retry: the next pass after the delay");

	printf("1..%d\n", ntests);
	return nfailed != 0;
}
