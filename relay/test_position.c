/*-------------------------------------------------------------------------
 *
 * test_position.c
 *	  unit tests of the relay's window ring (position.c), no PG or Kafka
 *
 * Drives position.c through its API as the reader does: open a window,
 * count rows produced in it, close it with its snapshot and highest id,
 * settle rows as Kafka acknowledges them, and advance (relay_position_store
 * without a store session only moves the settled position).  Checks that
 * windows settle in order, only when closed with no row pending, that an
 * open window holds back the ones after it, that max_id never goes back,
 * that a rescan (drop) forgets the windows but keeps the position, and
 * that the ring keeps its order when it grows while wrapped around.
 * What position.c calls outside itself (log, metrics, the store session,
 * the clock) is stubbed below.
 *
 * IDENTIFICATION
 *	  relay/test_position.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "relay.h"
#include "test_tap.h"

/* ---- stubs of what position.c calls ---- */

volatile sig_atomic_t relay_fatal_error = 0;

void
tk_log(tk_log_level level, const char *fmt,...)
{
	(void) level;
	(void) fmt;
}

int64_t
tk_monotonic_ms(void)
{
	return 0;
}

void
relay_metrics_truncated(int partitions)
{
	(void) partitions;
}

void
relay_metrics_error(const char *kind)
{
	(void) kind;
}

PGconn *
relay_pg_connect(const char *conninfo)
{
	(void) conninfo;
	return NULL;
}

void
relay_log_api_error(PGconn *conn, const PGresult *res, const char *function, const char *doing)
{
	(void) conn;
	(void) res;
	(void) function;
	(void) doing;
}

/* ---- helpers ---- */

/* settle what can settle (no store session: nothing is sent) */
static void
advance(void)
{
	relay_position_store(false, 1000);
}

/* the settled position is snapshot and max_id */
static int
settled_is(const char *snapshot, int64_t max_id)
{
	const char *s;
	int64_t		m;

	if (!relay_position_settled(&s, &m))
		return snapshot == NULL;
	return snapshot != NULL && strcmp(s, snapshot) == 0 && m == max_id;
}

/* a closed window of one row, not yet settled */
static uint64_t
window_of_one_row(const char *snapshot, int64_t max_id)
{
	uint64_t	w = relay_position_open_window();

	relay_position_row_added(w);
	relay_position_close_window(w, snapshot, max_id);
	return w;
}

int
main(void)
{
	uint64_t	w1,
				w2,
				w3,
				w4;
	uint64_t	many[300];
	char		snap[32];
	bool		in_order;

	/* no position yet */
	ok(!relay_position_settled(&(const char *) {NULL}, &(int64_t) {0}), "no position before one is loaded");
	advance();
	ok(settled_is(NULL, 0), "nothing settles with no windows");
	ok(relay_position_store_due_ms(1000) == -1, "no store is due with nothing settled");

	relay_position_set("s0", 5);
	ok(settled_is("s0", 5), "the loaded position is the settled one");

	/* a window settles once closed with none of its rows pending */
	w1 = relay_position_open_window();
	ok(w1 != 0 && relay_position_current_window() == w1, "an open window is the current one");
	relay_position_row_added(w1);
	relay_position_row_added(w1);
	advance();
	ok(settled_is("s0", 5), "an open window does not settle");
	relay_position_close_window(w1, "s1", 10);
	ok(relay_position_current_window() == 0, "a closed window is not current");
	advance();
	ok(settled_is("s0", 5), "a closed window with two rows pending does not settle");
	relay_position_row_settled(w1);
	advance();
	ok(settled_is("s0", 5), "... nor with one pending");
	relay_position_row_settled(w1);
	advance();
	ok(settled_is("s1", 10), "with none pending its snapshot and max_id are the position");
	ok(relay_position_store_due_ms(1000) >= 0, "then a store is due");

	/* windows settle in order: a later window waits for an earlier one */
	w2 = window_of_one_row("s2", 20);
	w3 = relay_position_open_window();
	relay_position_close_window(w3, "s3", 30);
	advance();
	ok(settled_is("s1", 10), "an empty window waits for the unsettled one before it");
	relay_position_row_settled(w2);
	advance();
	ok(settled_is("s3", 30), "both settle once the earlier one's row is acknowledged");

	/* an open window holds back the closed ones after it */
	w4 = relay_position_open_window();
	relay_position_row_added(w4);
	w1 = window_of_one_row("s5", 50);
	relay_position_row_settled(w1);
	advance();
	ok(settled_is("s3", 30), "an open window holds back a settled window after it");
	relay_position_close_window(w4, "s4", 40);
	relay_position_row_settled(w4);
	advance();
	ok(settled_is("s5", 50), "closed and settled, both move the position");

	/* max_id never goes back (a window may read no higher id than before) */
	w1 = relay_position_open_window();
	relay_position_close_window(w1, "s6", 7);
	advance();
	ok(settled_is("s6", 50), "a window's lower max_id does not lower the position's");

	/* a rescan drops the windows; the settled position stays */
	w1 = window_of_one_row("s7", 70);
	relay_position_drop_windows();
	ok(relay_position_current_window() == 0, "after a drop no window is current");
	relay_position_row_settled(w1);		/* an ack for a dropped window */
	advance();
	ok(settled_is("s6", 50), "a drop keeps the settled position; a late ack changes nothing");
	w2 = window_of_one_row("s8", 80);
	ok(w2 > w1, "window numbers keep growing after a drop");
	relay_position_row_settled(w2);
	advance();
	ok(settled_is("s8", 80), "the first window after a drop settles");

	/* the ring grows while wrapped around and keeps its order */
	for (int i = 0; i < 40; i++)
	{
		snprintf(snap, sizeof(snap), "r%d", i);
		many[i] = window_of_one_row(snap, 1000 + i);
	}
	for (int i = 0; i < 30; i++)
		relay_position_row_settled(many[i]);
	advance();
	ok(settled_is("r29", 1029), "the first 30 of 40 windows settled");
	for (int i = 40; i < 300; i++)
	{
		snprintf(snap, sizeof(snap), "r%d", i);
		many[i] = window_of_one_row(snap, 1000 + i);
	}
	/* settle from the newest back: the position moves only at the end */
	in_order = true;
	for (int i = 299; i >= 30; i--)
	{
		relay_position_row_settled(many[i]);
		advance();
		if (i > 30 && !settled_is("r29", 1029))
			in_order = false;
	}
	ok(in_order, "270 windows across a grown, wrapped ring wait for the oldest");
	ok(settled_is("r299", 1299), "then all settle, to the newest window's snapshot");
	ok(relay_position_current_window() == 0, "no window left open");

	printf("1..%d\n", ntests);
	return nfailed != 0;
}
