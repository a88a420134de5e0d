/*-------------------------------------------------------------------------
 *
 * outbox_reader.c
 *	  read committed outbox rows in snapshot windows
 *
 * Nothing skipped (guarantee 2): "id > last_id" loses a row whose
 * transaction took a lower id but committed later.  So, as PgQ's ticks:
 * S1 = the snapshot that closed the previous window (after a (re)connect,
 * the settled position of position.c), S2 = pg_current_snapshot() of the
 * query opening this one; the window = rows visible in S2 but not in S1,
 * read in id order page by page with S1, S2 fixed; a short page closes it.
 * Each query passes known_max (highest id of earlier windows), so
 * relay_page() finds late rows by xid and never walks published rows
 * still waiting for their partition's TRUNCATE.
 * Order (guarantee 3): a task's row lock serializes its changes, so the
 * later one has the higher id and the same or a later window.
 *
 * Starting over at the settled position (a reconnect, a failed statement,
 * a rescan) waits until no row is in flight (PASS_INFLIGHT): rows acked
 * after the position are sent again, and a row still in flight must not be
 * overtaken by such an older resend, or a task's last copies on the topic
 * would be out of commit order (an older event after a newer one, which
 * puts a read model that keeps the highest offset back; tests/115).  A row
 * met again while in flight anyway rejoins the current window
 * (relay_row_rejoin), and position.c settles windows.  A full librdkafka
 * queue returns PASS_BACKPRESSURE and the page resumes later.  Poison rows
 * go to dead_letters (todo_kafka.relay_dead_letter()).  Only the relay API
 * is called (extension/sql/05_relay_api.sql), never a query on tables.
 *
 * Main thread only.  The next page's query runs while a page is produced,
 * and the next window's may be sent early (relay_reader_prefetch_begin/
 * _end); it is always collected before relay_reader_pass() returns.
 *
 * IDENTIFICATION
 *	  relay/outbox_reader.c
 *
 *-------------------------------------------------------------------------
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

/* rows of a librdkafka queue reserved per row (one row makes a few messages) */
#define ROW_QUEUE_ROOM 64

#define PAGE_STMT "todo_kafka_relay_page"

/*
 * The page query: todo_kafka.relay_page() (extension/sql/05_relay_api.sql),
 * the one place that knows the outbox's columns.  $1 = the page cursor (last
 * id read in this window), $2 = S2 (NULL: this statement's own snapshot
 * opens the window), $3 = S1 (NULL: nothing published yet: every
 * committed row), $4 = known_max, $5 = the page size.
 *
 * The zero-row snapshot trick: relay_page() always returns at least one
 * row, and every row carries pg_current_snapshot() of this statement.  An
 * empty window thus comes back as one row with a NULL id (install_page()
 * counts it as no rows), and the reader still learns the snapshot: it
 * becomes S2 of the window it opens and, once the window's last (short)
 * page is read, S1 of the next.  Without that row an empty window would
 * return nothing, no S2 could be recorded, and the next window would have
 * to start from an older horizon.
 *
 * The transaction horizon: rows are taken by snapshot visibility, not by
 * id alone, so a transaction that took a lower id and commits later is in
 * a later window (visible in its S2, not in its S1): nothing is skipped
 * (guarantee 2, tests/103_out_of_order_commit.pl).  The id cursor only
 * pages within one window, whose S1 and S2 stay fixed.
 *
 * relay_page() is a LANGUAGE sql STABLE function that PostgreSQL inlines,
 * so the prepared statement plans as the plain SELECT it replaced (an
 * index range scan on the primary key), and pg_current_snapshot() is this
 * statement's snapshot.  Columns are found by name (reader_columns below),
 * never by position.
 */
#define PAGE_SQL "SELECT * FROM todo_kafka.relay_page($1, $2, $3, $4, $5)"

/* the page's columns that make a tk_outbox_row, by name */
static const struct
{
	const char *name;
	size_t		offset;			/* of the field in tk_outbox_row */
}			reader_columns[] = {
#define RC(f) {#f, offsetof(tk_outbox_row, f)}
	RC(id), RC(xid), RC(event_id), RC(kind), RC(stream), RC(event_type),
	RC(source), RC(key), RC(user_id), RC(actor), RC(db_role),
	RC(correlation_id), RC(traceparent), RC(before), RC(after), RC(changed),
	RC(headers), RC(occurred_at)
#undef RC
};

#define NREADER_COLUMNS (sizeof(reader_columns) / sizeof(reader_columns[0]))

struct relay_reader
{
	bool		prepared;		/* PAGE_STMT exists on this connection */
	char	   *s1;				/* closed the previous window; NULL = none */
	char	   *s2;				/* current window; NULL = no window open */
	uint64_t	window;			/* its position.c seq */
	int64_t		window_max;		/* highest id read in it */
	int64_t		known_max;		/* highest id read before it (all visible in s1) */
	int64_t		cursor;			/* last id read in the current window */
	PGresult   *page;			/* page being produced */
	PGresult   *next;			/* prefetched following page, or NULL */
	bool		window_prefetched;	/* a query opening the next window was sent */
	int			colnum[NREADER_COLUMNS];	/* of page, by reader_columns */
	int			id_col;			/* of page: the id column */
	int			pos;
	int			nrows;
	bool		last_page;		/* the page is short: it closes the window */
	bool		restarting;		/* reset: read nothing while rows are in flight */
	uint64_t	xmax;			/* of the newest snapshot seen */
	uint64_t   *xip;			/* in progress in the newest snapshot */
	int			nxip;
};

relay_reader *
relay_reader_create(void)
{
	return calloc(1, sizeof(relay_reader));
}

/* after a reconnect or a rescan request: start over at the settled position */
void
relay_reader_reset(relay_reader *rd)
{
	const char *settled;
	int64_t		settled_max;

	free(rd->s1);
	free(rd->s2);
	rd->s1 = rd->s2 = NULL;
	rd->known_max = 0;
	if (relay_position_settled(&settled, &settled_max))
	{
		rd->s1 = strdup(settled);
		rd->known_max = rd->s1 ? settled_max : 0;
	}
	relay_position_drop_windows();
	rd->restarting = true;
	rd->cursor = 0;
	if (rd->page)
		PQclear(rd->page);
	if (rd->next)
		PQclear(rd->next);
	rd->page = rd->next = NULL;
	rd->window_prefetched = false;
	rd->prepared = false;
}

bool
relay_reader_window_open(relay_reader *rd)
{
	return rd->s2 != NULL;
}

/* remember xmax and the in-progress list of "xmin:xmax:xip,xip,..." */
static void
parse_snapshot(relay_reader *rd, const char *snap)
{
	const char *p = strchr(snap, ':');
	int			n = 0;

	rd->nxip = 0;
	if (p == NULL)
		return;
	rd->xmax = strtoull(p + 1, NULL, 10);
	p = strchr(p + 1, ':');
	if (p == NULL || p[1] == '\0')
		return;
	for (const char *q = p + 1; *q; q++)
		if (*q == ',')
			n++;
	free(rd->xip);
	rd->xip = malloc(sizeof(uint64_t) * (n + 1));
	if (rd->xip == NULL)
		return;
	for (p = p + 1; *p;)
	{
		char	   *end;

		rd->xip[rd->nxip++] = strtoull(p, &end, 10);
		p = (*end == ',') ? end + 1 : end + strlen(end);
	}
}

/* the transactions in progress in the newest snapshot */
int
relay_reader_in_progress(relay_reader *rd, uint64_t **xids)
{
	*xids = rd->xip;
	return rd->nxip;
}

/* is any of xids still in progress according to the newest snapshot? */
bool
relay_reader_still_running(relay_reader *rd, const uint64_t *xids, int n)
{
	for (int i = 0; i < n; i++)
	{
		if (xids[i] >= rd->xmax)
			return true;
		for (int j = 0; j < rd->nxip; j++)
			if (rd->xip[j] == xids[i])
				return true;
	}
	return false;
}

static const char *
col(PGresult *res, int row, int c)
{
	return c < 0 || PQgetisnull(res, row, c) ? NULL : PQgetvalue(res, row, c);
}

/* prepare the page query for this connection */
static bool
prepare_page(PGconn *conn)
{
	PGresult   *res = PQprepare(conn, PAGE_STMT, PAGE_SQL, 5, NULL);
	bool		ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		relay_log_api_error(conn, res, "todo_kafka.relay_page() with five arguments",
							"prepare the outbox query");
	PQclear(res);
	return ok;
}

/* send the page query for the rows after rd->cursor (no wait) */
static bool
send_page(relay_reader *rd, PGconn *conn, int batch)
{
	char		cursor[32];
	char		known_max[32];
	char		limit[16];
	const char *params[5];

	if (!rd->prepared)
	{
		if (!prepare_page(conn))
			return false;
		rd->prepared = true;
	}
	if (rd->s2 == NULL)
		rd->cursor = 0;
	snprintf(cursor, sizeof(cursor), "%" PRId64, rd->cursor);
	snprintf(known_max, sizeof(known_max), "%" PRId64, rd->known_max);
	snprintf(limit, sizeof(limit), "%d", batch);
	params[0] = cursor;
	params[1] = rd->s2;
	params[2] = rd->s1;
	params[3] = known_max;
	params[4] = limit;
	if (!PQsendQueryPrepared(conn, PAGE_STMT, 5, params, NULL, NULL, 0))
	{
		tk_log(TK_LOG_ERROR, "could not read the outbox: %s", PQerrorMessage(conn));
		return false;
	}
	return true;
}

/* wait for the result of send_page(); NULL on error */
static PGresult *
recv_page(PGconn *conn)
{
	PGresult   *res = PQgetResult(conn);
	PGresult   *extra;

	while ((extra = PQgetResult(conn)) != NULL)
		PQclear(extra);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1)
	{
		tk_log(TK_LOG_ERROR, "could not read the outbox: %s", PQerrorMessage(conn));
		PQclear(res);
		return NULL;
	}
	return res;
}

/* make res the page being produced; find its columns by name */
static void
install_page(relay_reader *rd, PGresult *res, int batch)
{
	int			snap_col = PQfnumber(res, "snapshot");

	for (size_t k = 0; k < NREADER_COLUMNS; k++)
		rd->colnum[k] = PQfnumber(res, reader_columns[k].name);
	rd->id_col = PQfnumber(res, "id");
	parse_snapshot(rd, PQgetvalue(res, 0, snap_col));
	if (rd->s2 == NULL)
	{
		/* this query opened a window */
		rd->s2 = strdup(PQgetvalue(res, 0, snap_col));
		rd->window = relay_position_open_window();
		rd->window_max = 0;
	}
	rd->page = res;
	rd->pos = 0;
	rd->nrows = PQgetisnull(res, 0, rd->id_col) ? 0 : PQntuples(res);
	rd->last_page = rd->nrows < batch;
	if (rd->nrows > 0)
	{
		rd->cursor = strtoll(PQgetvalue(res, rd->nrows - 1, rd->id_col), NULL, 10);
		if (rd->cursor > rd->window_max)
			rd->window_max = rd->cursor;
	}
}

/*
 * One step: take the next page (prefetched, or fetched now) and produce its
 * rows.  Pipelining: as soon as a full page is installed, the query for the
 * following page (same window, cursor = this page's last id) is sent, so
 * PostgreSQL computes it while this page's messages are built and produced;
 * its result is collected before this function returns (on every path), so
 * no query is outstanding when the caller uses the connection again.
 */
relay_pass_result
relay_reader_pass(relay_reader *rd, PGconn *conn, rd_kafka_t *rk,
				  relay_topics *topics, int batch)
{
	int			produced = 0;
	bool		prefetching = false;
	relay_pass_result result;

	if (rd->restarting)
	{
		if (relay_rows_in_flight() > 0)
			return PASS_INFLIGHT;
		rd->restarting = false;
	}
	if (rd->page == NULL)
	{
		PGresult   *res = rd->next;

		rd->next = NULL;
		if (res == NULL && (!send_page(rd, conn, batch) || (res = recv_page(conn)) == NULL))
			return PASS_ERROR;
		install_page(rd, res, batch);
	}
	if (!rd->last_page && rd->next == NULL)
	{
		if (!send_page(rd, conn, batch))
			return PASS_ERROR;
		prefetching = true;
	}

	result = PASS_MORE;
	while (rd->pos < rd->nrows)
	{
		PGresult   *res = rd->page;
		int			i = rd->pos;
		int64_t		id = strtoll(PQgetvalue(res, i, rd->id_col), NULL, 10);
		tk_outbox_row row = {0};

		if (relay_producer_queue_room(rk) < ROW_QUEUE_ROOM)
		{
			result = PASS_BACKPRESSURE;
			break;
		}
		rd->pos++;
		if (relay_row_rejoin(id))
			continue;			/* known from before a rescan */
		for (size_t k = 0; k < NREADER_COLUMNS; k++)
			*(const char **) ((char *) &row + reader_columns[k].offset) =
				col(res, i, rd->colnum[k]);
		/* a (re)scheduled or cancelled reminder may move the next due time */
		if (strcmp(row.kind, "reminder") == 0 &&
			(strcmp(row.event_type, "scheduled") == 0 ||
			 strcmp(row.event_type, "cancelled") == 0))
			relay_reminders_changed();
		if (!relay_producer_send_row(rk, topics, &row, id))
		{
			rd->pos--;
			result = PASS_BACKPRESSURE;
			break;
		}
		produced++;
	}

	if (prefetching && (rd->next = recv_page(conn)) == NULL)
		return PASS_ERROR;
	if (result == PASS_BACKPRESSURE)
		return produced > 0 ? PASS_ROWS : PASS_BACKPRESSURE;

	PQclear(rd->page);
	rd->page = NULL;
	if (rd->last_page)
	{
		/* window closed: S1 := S2 */
		relay_position_close_window(rd->window, rd->s2, rd->window_max);
		if (rd->window_max > rd->known_max)
			rd->known_max = rd->window_max;
		free(rd->s1);
		rd->s1 = rd->s2;
		rd->s2 = NULL;
		return produced > 0 ? PASS_ROWS : PASS_EMPTY;
	}
	return produced > 0 ? PASS_ROWS : PASS_MORE;
}

/*
 * Open the next window early (see "Overlap" in pass_schedule.c): after a
 * pass that closed its window, send the query that opens the next one, so
 * PostgreSQL runs it while the caller waits on Kafka;
 * relay_reader_prefetch_end() collects it as the prefetched page the next
 * pass starts from.  Nothing is sent while a page or a prefetched result is
 * held, or a window is open.
 */
bool
relay_reader_prefetch_begin(relay_reader *rd, PGconn *conn, int batch)
{
	if (rd->page != NULL || rd->next != NULL || rd->s2 != NULL)
		return true;
	if (!send_page(rd, conn, batch))
		return false;
	rd->window_prefetched = true;
	return true;
}

bool
relay_reader_prefetch_end(relay_reader *rd, PGconn *conn)
{
	if (!rd->window_prefetched)
		return true;
	rd->window_prefetched = false;
	return (rd->next = recv_page(conn)) != NULL;
}

/* move settled poison rows to todo_kafka.dead_letters */
bool
relay_move_dead(PGconn *conn)
{
	relay_dead_row *dead;
	int			n = relay_take_dead(&dead);

	for (int i = 0; i < n; i++)
	{
		char		id[32];
		const char *params[3];
		PGresult   *res;
		bool		ok;

		snprintf(id, sizeof(id), "%" PRId64, dead[0].id);
		params[0] = id;
		params[1] = dead[0].topic ? dead[0].topic : "";
		params[2] = dead[0].reason ? dead[0].reason : "";
		res = PQexecParams(conn, "SELECT todo_kafka.relay_dead_letter($1, $2, $3)",
						   3, NULL, params, NULL, NULL, 0);
		ok = PQresultStatus(res) == PGRES_TUPLES_OK;
		if (!ok)
			tk_log(TK_LOG_ERROR, "could not move outbox row %s to todo_kafka.dead_letters: %s",
				   id, PQerrorMessage(conn));
		else
			tk_log(TK_LOG_WARNING, "outbox row %s moved to todo_kafka.dead_letters: %s",
				   id, params[2]);
		PQclear(res);
		if (!ok)
			return false;
		relay_forget_dead(dead, 1);
	}
	return true;
}

/*
 * Measure the backlog for /metrics: the rows not yet published (beyond the
 * stored position) and the age of the oldest of them
 * (todo_kafka.relay_backlog(), through the xid index).
 */
bool
relay_query_backlog(PGconn *conn)
{
	PGresult   *res = PQexec(conn, "SELECT pending_rows, oldest_age_seconds"
							 " FROM todo_kafka.relay_backlog()");

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		tk_log(TK_LOG_WARNING, "could not measure the outbox backlog: %s", PQerrorMessage(conn));
		PQclear(res);
		return false;
	}
	relay_metrics_backlog(strtoll(PQgetvalue(res, 0, 0), NULL, 10),
						  strtod(PQgetvalue(res, 0, 1), NULL));
	PQclear(res);
	return true;
}
