/*-------------------------------------------------------------------------
 *
 * position.c
 *	  the relay's position in the outbox: which windows Kafka has settled
 *
 * The relay never deletes published rows; it keeps a position and the
 * extension TRUNCATEs whole outbox partitions it covers (PgQ's rotation;
 * extension/sql/04_outbox_capture.sql).  The position is a snapshot S,
 * promising "every row visible in S was published or dead-lettered", plus
 * max_id, the highest such id (the next read skips below it: relay_page()).
 *
 * Window k (outbox_reader.c) = rows committed between S(k-1) and S(k).  It
 * counts its unsettled rows: +1 when produced (relay_inflight_add), -1 when
 * the last message is acknowledged or the row dead-lettered.  Windows settle
 * in order: once k is closed, at zero and all earlier settled, S(k) is the
 * position.  A rescan drops the windows and reads from the position; rows
 * in flight rejoin the new first window (relay_row_rejoin).
 *
 * relay_position_store() sends todo_kafka.relay_commit_position() (which
 * truncates settled partitions) when rows settled and the interval passed,
 * or at shutdown, and every TRUNCATE_RETRY_MS for a while after the last
 * rows, so a partition it could not lock is emptied too.  It runs on its
 * own session, collected on a later loop turn, so no TRUNCATE holds up
 * reading.  A store lost to a kill, late, or by an ex-leader is still true:
 * at worst rows are re-sent (same message ids: guarantee 4).
 *
 * Threading: main thread only; all state is in position_state.
 *
 * IDENTIFICATION
 *	  relay/position.c
 *
 *-------------------------------------------------------------------------
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "relay.h"

/* after the last rows settled, retry truncation this often, this long */
#define TRUNCATE_RETRY_MS		1000
#define TRUNCATE_RETRY_FOR_MS	10000

typedef struct window
{
	uint64_t	seq;
	int64_t		pending;		/* rows produced in it, not yet settled */
	bool		closed;
	char	   *snapshot;		/* S(k), once closed */
	int64_t		max_id;			/* highest id read in it, once closed */
} window;

static struct
{
	window	   *ring;			/* open and unsettled windows, oldest first */
	int			head;
	int			count;
	int			cap;
	uint64_t	next_seq;		/* seq of the next window to open */
	char	   *settled;		/* settled position; NULL: none */
	int64_t		settled_max;
	int64_t		settled_rows;	/* rows settled since the last store */
	int64_t		stored_at;		/* monotonic ms of the last store */
	int64_t		retry_until;	/* keep storing (truncation retries) until */
	char	   *conninfo;		/* of the store's session */
	PGconn	   *store;			/* the store's session, or NULL */
	bool		store_busy;		/* a store was sent, not yet collected */
	int64_t		connect_at;		/* next (re)connect attempt */
	bool		broken;			/* out of memory: never advance again */
} position_state = {.next_seq = 1};

/*
 * Out of memory while tracking windows: a window whose rows are not
 * counted could settle too early, and the position would then pass rows
 * not yet acknowledged.  Stop advancing and stop the relay (exit 1); the
 * next one starts at the stored position, which is still true.
 */
static void
position_broken(const char *what)
{
	tk_log(TK_LOG_FATAL, "out of memory while %s; stopping (rows past the stored position are sent again)",
		   what);
	position_state.broken = true;
	relay_fatal_error = 1;
}

static window *
window_at(int i)
{
	return &position_state.ring[(position_state.head + i) % position_state.cap];
}

static window *
window_find(uint64_t seq)
{
	if (position_state.count == 0 || seq < window_at(0)->seq)
		return NULL;
	if (seq - window_at(0)->seq >= (uint64_t) position_state.count)
		return NULL;
	return window_at((int) (seq - window_at(0)->seq));
}

/* the position loaded from the database (NULL snapshot: none yet) */
void
relay_position_set(const char *snapshot, int64_t max_id)
{
	free(position_state.settled);
	position_state.settled = snapshot ? strdup(snapshot) : NULL;
	position_state.settled_max = snapshot ? max_id : 0;
	position_state.settled_rows = 0;
}

/* the settled position, where a rescan starts: false when there is none */
bool
relay_position_settled(const char **snapshot, int64_t *max_id)
{
	*snapshot = position_state.settled;
	*max_id = position_state.settled_max;
	return position_state.settled != NULL;
}

/* forget every window (a rescan); the settled position stays */
void
relay_position_drop_windows(void)
{
	for (int i = 0; i < position_state.count; i++)
		free(window_at(i)->snapshot);
	position_state.count = 0;
	position_state.head = 0;
}

/* open a window; returns its seq (0 when out of memory: see position_broken) */
uint64_t
relay_position_open_window(void)
{
	window	   *w;

	if (position_state.count == position_state.cap)
	{
		int			cap = position_state.cap ? position_state.cap * 2 : 64;
		window	   *ring = malloc(sizeof(window) * cap);

		if (ring == NULL)
		{
			position_broken("opening an outbox window");
			return 0;
		}
		for (int i = 0; i < position_state.count; i++)
			ring[i] = *window_at(i);
		free(position_state.ring);
		position_state.ring = ring;
		position_state.cap = cap;
		position_state.head = 0;
	}
	w = window_at(position_state.count++);
	memset(w, 0, sizeof(*w));
	w->seq = position_state.next_seq++;
	return w->seq;
}

/* the newest window, which rows produced now belong to (0: none open) */
uint64_t
relay_position_current_window(void)
{
	if (position_state.count == 0 || window_at(position_state.count - 1)->closed)
		return 0;
	return window_at(position_state.count - 1)->seq;
}

void
relay_position_row_added(uint64_t seq)
{
	window	   *w = window_find(seq);

	if (w != NULL)
		w->pending++;
}

void
relay_position_row_settled(uint64_t seq)
{
	window	   *w = window_find(seq);

	if (w != NULL)
		w->pending--;
	position_state.settled_rows++;
}

/* settle the windows at the head */
static void
advance(void)
{
	while (position_state.count > 0 && !position_state.broken)
	{
		window	   *w = window_at(0);

		if (!w->closed || w->pending > 0)
			break;
		free(position_state.settled);
		position_state.settled = w->snapshot;
		if (w->max_id > position_state.settled_max)
			position_state.settled_max = w->max_id;
		position_state.head = (position_state.head + 1) % position_state.cap;
		position_state.count--;
	}
}

/*
 * The reader read the window's last page: it closes with snapshot S(k)
 * (copied) and the highest id it read (rows it skipped as already in
 * flight count too: they are in it).
 */
void
relay_position_close_window(uint64_t seq, const char *snapshot, int64_t max_id)
{
	window	   *w = window_find(seq);

	if (w == NULL)
		return;
	w->closed = true;
	w->snapshot = strdup(snapshot);
	if (w->snapshot == NULL)
	{
		position_broken("closing an outbox window");
		return;
	}
	w->max_id = max_id;
}

/* the store's session: opened when leading, closed with the main one */
void
relay_position_open(const char *conninfo)
{
	relay_position_close();
	position_state.conninfo = strdup(conninfo);
	position_state.connect_at = 0;
}

void
relay_position_close(void)
{
	if (position_state.store)
		PQfinish(position_state.store);
	position_state.store = NULL;
	position_state.store_busy = false;
	free(position_state.conninfo);
	position_state.conninfo = NULL;
}

/*
 * Collect the answer of the store in flight; without wait, only if it has
 * arrived.  A failed store is retried with the next one (the rows it
 * covered count as unsaved again).
 */
static void
store_collect(bool wait)
{
	PGresult   *res;

	if (!position_state.store_busy)
		return;
	if (!wait &&
		(!PQconsumeInput(position_state.store) ||
		 PQisBusy(position_state.store)) &&
		PQstatus(position_state.store) == CONNECTION_OK)
		return;
	while ((res = PQgetResult(position_state.store)) != NULL)
	{
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
		{
			int			n = atoi(PQgetvalue(res, 0, 0));

			if (n > 0)
				relay_metrics_truncated(n);
		}
		else
		{
			tk_log(TK_LOG_ERROR, "could not store the relay's outbox position: %s",
				   PQerrorMessage(position_state.store));
			relay_metrics_error("postgres");
			position_state.settled_rows++;
		}
		PQclear(res);
	}
	position_state.store_busy = false;
	if (PQstatus(position_state.store) != CONNECTION_OK)
	{
		PQfinish(position_state.store);
		position_state.store = NULL;
		position_state.connect_at = tk_monotonic_ms() + 1000;
	}
}

/*
 * Move the settled position over every window that is done, forget the
 * acknowledged rows they held (inflight.c), and send a store when rows
 * settled and interval_ms passed since the last one (always when force,
 * which also waits for its answer: shutdown).
 */
void
relay_position_store(bool force, int interval_ms)
{
	const char *params[2];
	char		max_id[32];
	int64_t		now = tk_monotonic_ms();

	advance();
	store_collect(force);
	if (position_state.store_busy || position_state.settled == NULL ||
		position_state.conninfo == NULL)
		return;
	if (position_state.settled_rows == 0)
	{
		/*
		 * Nothing new to store, but a partition the last store could not
		 * lock (a reader or writer was in it) would wait for the next
		 * rows: after activity, store again every TRUNCATE_RETRY_MS for
		 * a while, so an outbox that falls quiet still gets emptied.
		 */
		if (force || now >= position_state.retry_until ||
			now - position_state.stored_at < TRUNCATE_RETRY_MS)
			return;
	}
	else if (!force && now - position_state.stored_at < interval_ms)
		return;
	else
		position_state.retry_until = now + TRUNCATE_RETRY_FOR_MS;
	if (position_state.store == NULL)
	{
		if (!force && now < position_state.connect_at)
			return;
		position_state.store = relay_pg_connect(position_state.conninfo);
		if (position_state.store == NULL)
		{
			position_state.connect_at = now + 1000;
			return;
		}
	}

	snprintf(max_id, sizeof(max_id), "%" PRId64, position_state.settled_max);
	params[0] = position_state.settled;
	params[1] = max_id;
	if (!PQsendQueryParams(position_state.store,
						   "SELECT todo_kafka.relay_commit_position($1, $2)",
						   2, NULL, params, NULL, NULL, 0))
	{
		tk_log(TK_LOG_ERROR, "could not store the relay's outbox position: %s",
			   PQerrorMessage(position_state.store));
		PQfinish(position_state.store);
		position_state.store = NULL;
		position_state.connect_at = now + 1000;
		return;
	}
	position_state.store_busy = true;
	position_state.settled_rows = 0;
	position_state.stored_at = now;
	if (force)
		store_collect(true);
}

/* ms until a store is due (rows settled), or -1 when none is waiting */
int64_t
relay_position_store_due_ms(int interval_ms)
{
	int64_t		d;

	if (position_state.settled_rows == 0 &&
		(position_state.count == 0 || !window_at(0)->closed))
		return -1;
	d = position_state.stored_at + interval_ms - tk_monotonic_ms();
	return d < 0 ? 0 : d;
}

/*
 * Load the stored position (a new leader starts where the last one
 * stopped; the reader's reset then drops any windows); false when the
 * statement failed.
 */
bool
relay_position_load(PGconn *conn)
{
	PGresult   *res = PQexec(conn, "SELECT snapshot, max_id FROM todo_kafka.relay_position()");
	bool		ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;

	if (!ok)
		relay_log_api_error(conn, res, "todo_kafka.relay_position()",
							"read the relay's outbox position");
	else
		relay_position_set(PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0),
						   strtoll(PQgetvalue(res, 0, 1), NULL, 10));
	PQclear(res);
	return ok;
}
