/*-------------------------------------------------------------------------
 *
 * rowjson.c
 *	  row images as JSON for the capture trigger, with per-table caching
 *
 * The before and after images of a captured row are stored as json, in the
 * exact form row_to_json() gives.  row_to_json() itself looks up, for every
 * column of every call, the type's JSON category and output function in the
 * system caches (json_categorize_type, OidOutputFunctionCall): on the
 * single-row transactions of a task API that was about a third of the
 * capture trigger's time.  Here the per-column work is done once per table
 * and kept: category and output function (FmgrInfo) live in a cache entry
 * in CacheMemoryContext, keyed by the relation OID and rebuilt after any
 * relcache invalidation of that relation (ALTER TABLE, DROP).
 *
 * Categories mirror json.c's datum_to_json(): NULL -> null, bool -> true /
 * false, numbers as written unless NaN or Infinity (then quoted), date and
 * timestamps in ISO 8601 (JsonEncodeDateTime), json and jsonb as they are,
 * arrays through array_to_json(), everything else as an escaped string.
 * Domains use their base type's category.  A table with a column this file
 * does not classify the way json.c would (a composite column, or a
 * user-defined base type, which may carry a cast to json) falls back to
 * row_to_json() for the whole row, so the output never differs.
 *
 * IDENTIFICATION
 *	  extension/rowjson.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/tupdesc.h"
#include "access/transam.h"
#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "todo_kafka.h"

typedef enum RowJsonCategory
{
	RJ_BOOL,
	RJ_NUMBER,
	RJ_DATETIME,
	RJ_JSON,
	RJ_ARRAY,
	RJ_STRING
} RowJsonCategory;

typedef struct RowJsonColumn
{
	bool		dropped;
	RowJsonCategory category;
	Oid			typid;			/* base type, for JsonEncodeDateTime */
	char	   *quoted_name;	/* "name": already escaped, with the colon */
	FmgrInfo	output;
} RowJsonColumn;

typedef struct RowJsonEntry
{
	Oid			relid;			/* hash key */
	bool		stale;			/* invalidated: rebuild before use */
	bool		fallback;		/* use row_to_json() */
	int			natts;
	RowJsonColumn *columns;
} RowJsonEntry;

static HTAB *rowjson_cache = NULL;

/*
 * Relcache invalidation: mark the entry stale, free nothing.  A callback can
 * run in the middle of rendering a row (a cache miss inside an output
 * function takes a lock, which processes invalidations), so the columns
 * stay valid until the next rowjson_entry() rebuilds them.
 */
static void
rowjson_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	RowJsonEntry *entry;

	if (rowjson_cache == NULL)
		return;
	hash_seq_init(&status, rowjson_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (relid == InvalidOid || entry->relid == relid)
			entry->stale = true;
	}
}

static void
rowjson_free_columns(RowJsonEntry *entry)
{
	int			i;

	for (i = 0; i < entry->natts; i++)
		if (entry->columns[i].quoted_name)
			pfree(entry->columns[i].quoted_name);
	pfree(entry->columns);
	entry->columns = NULL;
}

/* classify one column; false if only row_to_json() can render it */
static bool
rowjson_classify(Form_pg_attribute att, RowJsonColumn *col)
{
	Oid			base = getBaseType(att->atttypid);
	Oid			outfunc;
	bool		isvarlena;

	col->typid = base;
	switch (base)
	{
		case BOOLOID:
			col->category = RJ_BOOL;
			break;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			col->category = RJ_NUMBER;
			break;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			col->category = RJ_DATETIME;
			break;
		case JSONOID:
		case JSONBOID:
			col->category = RJ_JSON;
			break;
		default:
			if (OidIsValid(get_element_type(base)))
				col->category = RJ_ARRAY;
			else if (type_is_rowtype(base) || base >= FirstNormalObjectId)
				return false;	/* composite, or a type that may cast to json */
			else
				col->category = RJ_STRING;
			break;
	}
	getTypeOutputInfo(base, &outfunc, &isvarlena);
	fmgr_info_cxt(outfunc, &col->output, CacheMemoryContext);
	return true;
}

static RowJsonEntry *
rowjson_entry(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	TupleDesc	tupdesc = RelationGetDescr(rel);
	RowJsonEntry *entry;
	bool		found;
	int			i;

	if (rowjson_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RowJsonEntry);
		ctl.hcxt = CacheMemoryContext;
		rowjson_cache = hash_create("todo_kafka row json cache", 16, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(rowjson_invalidate, (Datum) 0);
	}

	entry = hash_search(rowjson_cache, &relid, HASH_ENTER, &found);
	if (found && !entry->stale)
		return entry;
	if (found)
		rowjson_free_columns(entry);

	entry->stale = false;
	entry->fallback = false;
	entry->natts = tupdesc->natts;
	entry->columns = MemoryContextAllocZero(CacheMemoryContext,
											sizeof(RowJsonColumn) * tupdesc->natts);
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		RowJsonColumn *col = &entry->columns[i];
		StringInfoData name;

		if (att->attisdropped)
		{
			col->dropped = true;
			continue;
		}
		if (!rowjson_classify(att, col))
		{
			entry->fallback = true;
			break;
		}
		initStringInfo(&name);
		escape_json(&name, NameStr(att->attname));
		appendStringInfoChar(&name, ':');
		col->quoted_name = MemoryContextStrdup(CacheMemoryContext, name.data);
		pfree(name.data);
	}
	return entry;
}

static void
rowjson_value(StringInfo buf, RowJsonColumn *col, Datum value)
{
	char	   *out;

	switch (col->category)
	{
		case RJ_BOOL:
			appendStringInfoString(buf, DatumGetBool(value) ? "true" : "false");
			return;
		case RJ_DATETIME:
			{
				char		dt[MAXDATELEN + 1];

				appendStringInfoChar(buf, '"');
				appendStringInfoString(buf, JsonEncodeDateTime(dt, value, col->typid, NULL));
				appendStringInfoChar(buf, '"');
				return;
			}
		case RJ_ARRAY:
			out = text_to_cstring(DatumGetTextPP(DirectFunctionCall1(array_to_json, value)));
			appendStringInfoString(buf, out);
			return;
		default:
			break;
	}

	out = OutputFunctionCall(&col->output, value);
	if (col->category == RJ_JSON ||
		(col->category == RJ_NUMBER && IsValidJsonNumber(out, strlen(out))))
		appendStringInfoString(buf, out);
	else
		escape_json(buf, out);
}

/*
 * row_to_json() of the row; with only_cols, of a row made of just those
 * columns (a blessed record type with the same names and types), which is
 * the text row_to_json() gives with the other members left out.
 */
static Datum
rowjson_fallback(TupleDesc tupdesc, HeapTuple tuple, const bool *only_cols)
{
	TupleDesc	kept;
	Datum	   *values;
	bool	   *nulls;
	int			n = 0;
	int			i;

	if (only_cols == NULL)
		return DirectFunctionCall1(row_to_json, heap_copy_tuple_as_datum(tuple, tupdesc));

	for (i = 0; i < tupdesc->natts; i++)
		if (only_cols[i] && !TupleDescAttr(tupdesc, i)->attisdropped)
			n++;
	kept = CreateTemplateTupleDesc(n);
	values = palloc(sizeof(Datum) * Max(n, 1));
	nulls = palloc(sizeof(bool) * Max(n, 1));
	n = 0;
	for (i = 0; i < tupdesc->natts; i++)
	{
		if (!only_cols[i] || TupleDescAttr(tupdesc, i)->attisdropped)
			continue;
		TupleDescCopyEntry(kept, n + 1, tupdesc, i + 1);
		values[n] = heap_getattr(tuple, i + 1, tupdesc, &nulls[n]);
		n++;
	}
	kept = BlessTupleDesc(kept);
	return DirectFunctionCall1(row_to_json,
							   heap_copy_tuple_as_datum(heap_form_tuple(kept, values, nulls), kept));
}

/*
 * The row as json, the same text row_to_json() would give.  With only_cols
 * (indexed by attnum - 1), just those columns, in column order: the text
 * row_to_json() gives with the other members left out.
 */
Datum
todo_kafka_row_json(Relation rel, HeapTuple tuple, const bool *only_cols)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	RowJsonEntry *entry = rowjson_entry(rel);
	StringInfoData buf;
	bool		first = true;
	int			i;

	if (entry->fallback || entry->natts != tupdesc->natts)
		return rowjson_fallback(tupdesc, tuple, only_cols);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < tupdesc->natts; i++)
	{
		RowJsonColumn *col = &entry->columns[i];
		bool		isnull;
		Datum		value;

		if (col->dropped || (only_cols && !only_cols[i]))
			continue;
		if (!first)
			appendStringInfoChar(&buf, ',');
		first = false;
		appendStringInfoString(&buf, col->quoted_name);
		value = heap_getattr(tuple, i + 1, tupdesc, &isnull);
		if (isnull)
			appendStringInfoString(&buf, "null");
		else
			rowjson_value(&buf, col, value);
	}
	appendStringInfoChar(&buf, '}');
	return PointerGetDatum(cstring_to_text_with_len(buf.data, buf.len));
}
