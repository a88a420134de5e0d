/*-------------------------------------------------------------------------
 *
 * capture.c
 *	  row-change capture trigger and updated_at maintenance for todo_kafka
 *
 * todo_kafka.capture() is an AFTER ROW trigger for INSERT, UPDATE and
 * DELETE.  Each change writes exactly ONE outbox row, in the same
 * transaction, with the before and after row images (json), the changed
 * columns and the event type; fan-out to Kafka topics happens later, in the
 * relay, so the write path stays one insert.  An UPDATE's before image
 * holds only the changed columns (the relay rebuilds the whole old row for
 * the audit record), which halves the json work and WAL of updates.
 *
 * Event types: created (recurring-created when the recurrence parent column
 * is set), updated, completed (the completed column went from false to
 * true), deleted.  An UPDATE that changes no column writes nothing.
 * Columns are compared by their binary image (datumIsEqual), so an
 * unchanged TOASTed value compares equal; values differing only in their
 * varlena header (short, long, compressed) are compared by content.
 *
 * Cost: no catalog lookup per row.  Each row is deformed once and the
 * values serve the comparison, the key and user text and both images;
 * output functions, column names and the table's name come from
 * rowjson_cache.c.  bench/capture measures it.
 *
 * Trigger arguments: key column, user column, stream [, completed column
 * [, recurrence parent column]]; a named column that does not exist is an
 * error.  todo_kafka.touch() is a BEFORE UPDATE trigger setting its one
 * argument, a timestamptz column, to now() when another column changed, so
 * a no-op UPDATE stays a no-op and produces no event.
 *
 * IDENTIFICATION
 *	  extension/capture.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "todo_kafka.h"

PG_FUNCTION_INFO_V1(todo_kafka_capture);
PG_FUNCTION_INFO_V1(todo_kafka_touch);

/* attribute number of a trigger-argument column, or error */
static int
capture_column(Relation rel, const char *trigname, const char *colname)
{
	int			attnum = SPI_fnumber(RelationGetDescr(rel), colname);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("column \"%s\" named by trigger \"%s\" does not exist in table \"%s\"",
						colname, trigname, RelationGetRelationName(rel)),
				 errhint("Re-attach capture with todo_kafka.untrack() and todo_kafka.track().")));
	return attnum;
}

/* Are two values of column att the same?  (See the file header.) */
static bool
capture_value_equal(Form_pg_attribute att, Datum oldval, bool oldnull,
					Datum newval, bool newnull)
{
	if (oldnull || newnull)
		return oldnull == newnull;
	if (datumIsEqual(oldval, newval, att->attbyval, att->attlen))
		return true;
	if (att->attlen == -1)
	{
		/*
		 * The same value can be stored with a short or a long varlena
		 * header (a column added with a default reads its "missing" value
		 * with a long one), or compressed: compare the contents.
		 */
		struct varlena *a = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(oldval));
		struct varlena *b = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(newval));

		return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
			memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
	}
	return false;
}

static bool
capture_column_equal(HeapTuple oldtup, HeapTuple newtup, TupleDesc tupdesc, int attnum)
{
	bool		oldnull,
				newnull;
	Datum		oldval = heap_getattr(oldtup, attnum, tupdesc, &oldnull);
	Datum		newval = heap_getattr(newtup, attnum, tupdesc, &newnull);

	return capture_value_equal(TupleDescAttr(tupdesc, attnum - 1),
							   oldval, oldnull, newval, newnull);
}

/* a row's values, deformed once */
typedef struct CaptureRow
{
	Datum	   *values;
	bool	   *isnull;
} CaptureRow;

static void
capture_deform(HeapTuple tuple, TupleDesc tupdesc, CaptureRow *row)
{
	row->values = palloc(sizeof(Datum) * tupdesc->natts);
	row->isnull = palloc(sizeof(bool) * tupdesc->natts);
	heap_deform_tuple(tuple, tupdesc, row->values, row->isnull);
}

static bool
capture_bool(const CaptureRow *row, int attnum)
{
	return !row->isnull[attnum - 1] && DatumGetBool(row->values[attnum - 1]);
}

/* the text of column attnum, NULL if null */
static char *
capture_text(RowJsonEntry *entry, const CaptureRow *row, int attnum)
{
	if (row->isnull[attnum - 1])
		return NULL;
	return rowjson_column_text(entry, attnum, row->values[attnum - 1]);
}

/*
 * todo_kafka_capture
 *		AFTER ROW trigger: write one outbox row describing the change.
 *
 * Arguments: key column, user column, stream [, completed column
 * [, recurrence parent column]].  Returns NULL (after trigger).
 */
Datum
todo_kafka_capture(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Trigger    *trigger;
	Relation	rel;
	TupleDesc	tupdesc;
	HeapTuple	oldtup = NULL;
	HeapTuple	newtup = NULL;
	CaptureRow	oldrow = {0};
	CaptureRow	newrow = {0};
	const CaptureRow *current;
	RowJsonEntry *entry;
	OutboxEvent ev;
	int			key_att;
	int			user_att;
	int			completed_att = 0;
	int			parent_att = 0;
	bool	   *changed_cols = NULL;	/* UPDATE: which columns changed */

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("todo_kafka_capture: must be called as trigger")));
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("todo_kafka_capture: must be called after the change")));
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("todo_kafka_capture: must be called for each row")));

	trigger = trigdata->tg_trigger;
	if (trigger->tgnargs < 3 || trigger->tgnargs > 5)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("todo_kafka_capture: expected 3 to 5 arguments, got %d",
						trigger->tgnargs),
				 errhint("Attach capture with todo_kafka.track().")));

	rel = trigdata->tg_relation;
	tupdesc = RelationGetDescr(rel);
	key_att = capture_column(rel, trigger->tgname, trigger->tgargs[0]);
	user_att = capture_column(rel, trigger->tgname, trigger->tgargs[1]);
	if (trigger->tgnargs > 3)
		completed_att = capture_column(rel, trigger->tgname, trigger->tgargs[3]);
	if (trigger->tgnargs > 4)
		parent_att = capture_column(rel, trigger->tgname, trigger->tgargs[4]);
	entry = rowjson_lookup(rel);

	memset(&ev, 0, sizeof(ev));
	ev.kind = "change";
	ev.stream = trigger->tgargs[2];

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		newtup = trigdata->tg_trigtuple;
		capture_deform(newtup, tupdesc, &newrow);
		ev.event_type = (parent_att > 0 && !newrow.isnull[parent_att - 1]) ?
			"recurring-created" : "created";
	}
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		oldtup = trigdata->tg_trigtuple;
		capture_deform(oldtup, tupdesc, &oldrow);
		ev.event_type = "deleted";
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		Datum	   *names;
		int			nchanged = 0;
		int			attnum;

		oldtup = trigdata->tg_trigtuple;
		newtup = trigdata->tg_newtuple;
		capture_deform(oldtup, tupdesc, &oldrow);
		capture_deform(newtup, tupdesc, &newrow);

		names = palloc(sizeof(Datum) * tupdesc->natts);
		changed_cols = palloc0(sizeof(bool) * tupdesc->natts);
		for (attnum = 1; attnum <= tupdesc->natts; attnum++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, attnum - 1);

			if (att->attisdropped)
				continue;
			if (!capture_value_equal(att,
									 oldrow.values[attnum - 1], oldrow.isnull[attnum - 1],
									 newrow.values[attnum - 1], newrow.isnull[attnum - 1]))
			{
				names[nchanged++] = rowjson_column_name(entry, attnum);
				changed_cols[attnum - 1] = true;
			}
		}
		if (nchanged == 0)
			return PointerGetDatum(NULL);	/* nothing changed: no event */

		ev.changed = PointerGetDatum(construct_array(names, nchanged, TEXTOID,
													 -1, false, TYPALIGN_INT));
		ev.has_changed = true;

		if (completed_att > 0 &&
			!capture_bool(&oldrow, completed_att) &&
			capture_bool(&newrow, completed_att))
			ev.event_type = "completed";
		else
			ev.event_type = "updated";
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("todo_kafka_capture: must be fired for INSERT, UPDATE or DELETE")));

	current = newtup ? &newrow : &oldrow;
	ev.key = capture_text(entry, current, key_att);
	if (ev.key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("key column \"%s\" of table \"%s\" is null",
						trigger->tgargs[0], RelationGetRelationName(rel)),
				 errdetail("Every captured row needs a key: it becomes the Kafka message key.")));
	ev.user_id = capture_text(entry, current, user_att);
	ev.source = rowjson_table_name(entry);

	if (oldtup)
	{
		/* UPDATE: only the changed columns; the others equal the after image */
		ev.before = rowjson_render_row(entry, oldrow.values, oldrow.isnull, changed_cols);
		ev.has_before = true;
	}
	if (newtup)
	{
		ev.after = rowjson_render_row(entry, newrow.values, newrow.isnull, NULL);
		ev.has_after = true;
	}

	outbox_write(&ev);

	return PointerGetDatum(NULL);	/* after trigger; value doesn't matter */
}

/*
 * todo_kafka_touch
 *		BEFORE UPDATE ROW trigger: set the named timestamptz column to now()
 *		when any other column changed.  Returns the row to store.
 */
Datum
todo_kafka_touch(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	tupdesc;
	HeapTuple	oldtup;
	HeapTuple	newtup;
	int			touch_att;
	int			attnum;
	int			cols[1];
	Datum		vals[1];
	bool		nulls[1] = {false};

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("todo_kafka_touch: must be called as trigger")));
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("todo_kafka_touch: must be called before update, for each row")));
	if (trigdata->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("todo_kafka_touch: expected 1 argument, got %d",
						trigdata->tg_trigger->tgnargs)));

	rel = trigdata->tg_relation;
	tupdesc = RelationGetDescr(rel);
	oldtup = trigdata->tg_trigtuple;
	newtup = trigdata->tg_newtuple;
	touch_att = capture_column(rel, trigdata->tg_trigger->tgname,
							   trigdata->tg_trigger->tgargs[0]);
	if (TupleDescAttr(tupdesc, touch_att - 1)->atttypid != TIMESTAMPTZOID)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("column \"%s\" of table \"%s\" must be of type timestamptz",
						trigdata->tg_trigger->tgargs[0], RelationGetRelationName(rel))));

	for (attnum = 1; attnum <= tupdesc->natts; attnum++)
	{
		if (attnum == touch_att || TupleDescAttr(tupdesc, attnum - 1)->attisdropped)
			continue;
		if (!capture_column_equal(oldtup, newtup, tupdesc, attnum))
			break;
	}
	if (attnum > tupdesc->natts)
		return PointerGetDatum(newtup); /* nothing else changed */

	cols[0] = touch_att;
	vals[0] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	return PointerGetDatum(heap_modify_tuple_by_cols(newtup, tupdesc, 1, cols, vals, nulls));
}
