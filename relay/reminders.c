/*-------------------------------------------------------------------------
 *
 * reminders.c
 *	  fire due reminders from the leader relay, and know when the next is due
 *
 * Firing: todo_kafka.relay_fire_reminders(grace, max_rows) (extension/sql/
 * 06_reminders.sql) in autocommit, one transaction that marks each due
 * reminder sent (missed past scheduled_time + grace) and writes its event
 * into the outbox: exactly once across restarts and failovers.  Only the
 * leader calls it (main.c); SKIP LOCKED keeps two callers from firing one
 * twice.  It also returns the metrics, and a call that fired something
 * makes the next outbox pass due at once.
 *
 * When: it returns the milliseconds from the server's clock to the next
 * pending reminder (no clock skew), made a monotonic deadline rounded up
 * by 1 ms; main.c sleeps until min(reminder, outbox pass, poll).  Re-query
 * earlier when leadership is gained (relay_reminders_reset: fires what fell
 * due meanwhile), a reminder `scheduled`/`cancelled` event passes
 * (relay_reminders_changed, spaced by REQUERY_MIN_MS), or more are due
 * (over max_rows: at once; locked: after LOCKED_RETRY_MS); else SAFETY_MS.
 *
 * Errors: a failed statement retries with capped backoff; a missing
 * function disables firing until the next leadership gain (one warning); a
 * broken connection returns -1 and the caller reconnects.  All state is
 * static and owned by the main thread; libpq is synchronous.
 *
 * IDENTIFICATION
 *	  relay/reminders.c
 *
 *-------------------------------------------------------------------------
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "relay.h"

#define FIRE_BATCH			1000	/* max_rows per call */
#define REQUERY_MIN_MS		50		/* spacing of re-queries caused by rows */
#define LOCKED_RETRY_MS		20		/* due rows locked by someone else */
#define SAFETY_MS			60000	/* re-query at least this often */
#define RETRY_FIRST_MS		100
#define RETRY_MAX_MS		10000

/* columns: next_in_ms, wrote, sent, sent_max_late_s, missed, missed_max_late_s */
#define FIRE_SQL \
	"SELECT next_in_ms, wrote, sent, sent_max_late_s, missed, missed_max_late_s" \
	" FROM todo_kafka.relay_fire_reminders($1, $2)"

static int64_t due_at = 0;		/* monotonic ms of the next call */
static int64_t last_call_at = 0;
static bool disabled = false;	/* fire_due_reminders() is missing */
static int	retry_delay = RETRY_FIRST_MS;

/* leadership (re)gained or reminders switched on: call at once */
void
relay_reminders_reset(void)
{
	due_at = 0;
	disabled = false;
	retry_delay = RETRY_FIRST_MS;
}

/* the outbox pass saw a reminder scheduled or cancelled: re-query soon */
void
relay_reminders_changed(void)
{
	int64_t		soon = last_call_at + REQUERY_MIN_MS;

	if (!disabled && soon < due_at)
		due_at = soon;
}

/* monotonic ms at which relay_reminders_fire() should run next */
int64_t
relay_reminders_due_at(void)
{
	return disabled ? INT64_MAX : due_at;
}

/* what the call fired (columns col, col + 1 of res), for /metrics */
static void
count_fired(PGresult *res, const char *status, int col, int *fired)
{
	int			n = atoi(PQgetvalue(res, 0, col));
	double		late = strtod(PQgetvalue(res, 0, col + 1), NULL);

	if (n == 0)
		return;
	relay_metrics_reminders_fired(status, n, late);
	*fired += n;
	if (strcmp(status, "missed") == 0)
		tk_log(TK_LOG_INFO, "fired %d missed reminders, up to %.0f s late", n, late);
	else
		tk_log(TK_LOG_DEBUG, "fired %d reminders, up to %.3f s late", n, late);
}

/*
 * Fire what is due and set the next deadline.  Returns the number of
 * reminders fired (at least 1 when the call's transaction wrote anything,
 * even if counting failed), 0 when none, or -1 when the connection is
 * broken (the caller reconnects; the deadline is reset on leadership).
 */
int
relay_reminders_fire(PGconn *conn, int grace_s)
{
	char		grace[16];
	char		batch[16];
	const char *params[2];
	PGresult   *res;
	int64_t		now;
	int			fired = 0;
	bool		locked_by_others;

	snprintf(grace, sizeof(grace), "%d", grace_s);
	snprintf(batch, sizeof(batch), "%d", FIRE_BATCH);
	params[0] = grace;
	params[1] = batch;
	last_call_at = tk_monotonic_ms();
	res = PQexecParams(conn, FIRE_SQL, 2, NULL, params, NULL, NULL, 0);
	now = tk_monotonic_ms();
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		if (PQstatus(conn) != CONNECTION_OK)
		{
			PQclear(res);
			return -1;
		}
		relay_metrics_error("reminders");
		if (state && strcmp(state, "42883") == 0)
		{
			tk_log(TK_LOG_WARNING, "todo_kafka.relay_fire_reminders() does not exist (extension older than 0.4.0?); reminders are not fired");
			disabled = true;
		}
		else
		{
			tk_log(TK_LOG_ERROR, "could not fire due reminders, retrying in %d ms: %s",
				   retry_delay, PQerrorMessage(conn));
			due_at = now + retry_delay;
			retry_delay = retry_delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_delay * 2;
		}
		PQclear(res);
		return 0;
	}
	retry_delay = RETRY_FIRST_MS;

	if (strcmp(PQgetvalue(res, 0, 1), "t") == 0)
	{
		count_fired(res, "sent", 2, &fired);
		count_fired(res, "missed", 4, &fired);
		if (fired == 0)
			fired = 1;			/* rows were locked */
	}

	/* the next deadline */
	if (PQgetisnull(res, 0, 0))
		due_at = now + SAFETY_MS;	/* nothing pending */
	else
	{
		double		ms = strtod(PQgetvalue(res, 0, 0), NULL);

		if (ms > SAFETY_MS)
			ms = SAFETY_MS;
		locked_by_others = ms <= 0 && strcmp(PQgetvalue(res, 0, 1), "t") != 0;
		if (ms <= 0)
			due_at = locked_by_others ? now + LOCKED_RETRY_MS : now;
		else
			due_at = now + (int64_t) ms + 1;
	}
	PQclear(res);
	return fired;
}
