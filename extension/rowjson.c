/*-------------------------------------------------------------------------
 *
 * rowjson.c
 *	  row images as JSON for the capture trigger, with per-table caching
 *
 * The before and after images of a captured row are stored as json, in the
 * form row_to_json() gives, except for the values whose text depends on the
 * writing session's settings (message contract, since 0.4.0):
 *	 timestamptz	UTC, RFC 3339 with a "Z" and always six fraction digits
 *					("2030-01-02T08:00:00.000000Z"), whatever TimeZone says;
 *					row_to_json() follows TimeZone ("...-05:00" from a New
 *					York session) and drops trailing zeros of the fraction
 *	 interval		ISO 8601 durations ("PT15M", "P1D", "P1DT2H"), whatever
 *					IntervalStyle says ("00:15:00" and "1 day" by default)
 * in scalars and in arrays alike, so one instant or offset is spelled one
 * way in every message.  (date and timestamp without time zone carry no
 * zone and do not depend on the session: they keep row_to_json()'s text.)
 *
 * row_to_json() itself looks up, for every column of every call, the
 * type's JSON category and output function in the system caches
 * (json_categorize_type, OidOutputFunctionCall): on the single-row
 * transactions of a task API that was about a third of the capture
 * trigger's time.  Here the per-column work is done once per table and
 * kept: category and output function (FmgrInfo) live in a cache entry in
 * CacheMemoryContext, keyed by the relation OID and rebuilt after any
 * relcache invalidation of that relation (ALTER TABLE, DROP).
 *
 * The entry also keeps what the trigger needs besides the json, so a
 * captured change makes no system-cache lookup at all: each column's type
 * output function (the key and user columns' text), each column's name as
 * a text datum (the changed-columns array) and the table's quoted
 * qualified name (the source).  A schema rename does not invalidate the
 * relcache, so a pg_namespace syscache callback marks every entry stale.
 *
 * The trigger deforms each row once (heap_deform_tuple) and passes the
 * values here: heap_getattr() per column walks the tuple from its start
 * for every column after the first variable-length one.  Strings are
 * copied into the buffer in one piece when no byte needs escaping (the
 * usual case), text values straight from the datum without the output
 * function's copy, and the json is built in place as a text datum.
 *
 * Categories mirror json.c's datum_to_json(): NULL -> null, bool -> true /
 * false, numbers as written unless NaN or Infinity (then quoted), date and
 * timestamp in ISO 8601 (JsonEncodeDateTime), timestamptz and interval as
 * above, json and jsonb as they are, arrays element by element the way
 * array_to_json() nests them, everything else as an escaped string.
 * Domains use their base type's category.  A column this file does not
 * classify the way json.c would (a composite, an enum or another
 * user-defined base type, which may carry a cast to json, or an array of
 * those) is rendered by row_to_json() of a one-column row, so its text
 * never differs from row_to_json()'s (a timestamptz nested inside a
 * composite value therefore still follows TimeZone).
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
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "todo_kafka.h"

typedef enum RowJsonCategory
{
	RJ_BOOL,
	RJ_NUMBER,
	RJ_DATETIME,				/* date, timestamp: JsonEncodeDateTime */
	RJ_TIMESTAMPTZ,				/* UTC, "Z", six fraction digits */
	RJ_INTERVAL,				/* ISO 8601 duration */
	RJ_JSON,
	RJ_ARRAY,
	RJ_TEXT,					/* text, varchar: the datum's bytes, escaped */
	RJ_STRING,
	RJ_ROW_TO_JSON				/* row_to_json() of a one-column row */
} RowJsonCategory;

/* how to render a value of one (base) type */
typedef struct RowJsonType
{
	RowJsonCategory category;
	Oid			typid;			/* base type, for JsonEncodeDateTime */
	FmgrInfo	output;			/* the type's output function */
} RowJsonType;

typedef struct RowJsonColumn
{
	bool		dropped;
	RowJsonType type;
	char	   *quoted_name;	/* "name": already escaped, with the colon */
	int			quoted_len;
	text	   *name;			/* the column's name as text */
	/* RJ_ARRAY: the elements */
	RowJsonType elem;
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	/* RJ_ROW_TO_JSON: a blessed one-column row type */
	TupleDesc	onecol;
} RowJsonColumn;

struct RowJsonEntry
{
	Oid			relid;			/* hash key */
	bool		stale;			/* invalidated: rebuild before use */
	int			natts;
	RowJsonColumn *columns;
	char	   *source;			/* "schema"."table", quoted as needed */
};

static HTAB *rowjson_cache = NULL;

static void
rowjson_mark_stale(Oid relid)
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

/*
 * Relcache invalidation: mark the entry stale, free nothing.  A callback can
 * run in the middle of rendering a row (a cache miss inside an output
 * function takes a lock, which processes invalidations), so the columns
 * stay valid until the next rowjson_entry() rebuilds them.
 */
static void
rowjson_invalidate(Datum arg, Oid relid)
{
	rowjson_mark_stale(relid);
}

/* a schema was renamed or dropped: every source name may be wrong */
static void
rowjson_namespace_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	rowjson_mark_stale(InvalidOid);
}

static void
rowjson_free_columns(RowJsonEntry *entry)
{
	int			i;

	for (i = 0; i < entry->natts; i++)
	{
		if (entry->columns[i].quoted_name)
			pfree(entry->columns[i].quoted_name);
		if (entry->columns[i].name)
			pfree(entry->columns[i].name);
		/* the record type cache keeps its own copy of a blessed desc */
		if (entry->columns[i].onecol)
			FreeTupleDesc(entry->columns[i].onecol);
	}
	pfree(entry->columns);
	entry->columns = NULL;
	if (entry->source)
		pfree(entry->source);
	entry->source = NULL;
}

/* classify one (base) type; false if only row_to_json() renders it right */
static bool
rowjson_classify_type(Oid typid, RowJsonType *t)
{
	Oid			base = getBaseType(typid);
	Oid			outfunc;
	bool		isvarlena;

	/* a domain's output function is its base type's */
	getTypeOutputInfo(base, &outfunc, &isvarlena);
	fmgr_info_cxt(outfunc, &t->output, CacheMemoryContext);
	t->typid = base;
	switch (base)
	{
		case BOOLOID:
			t->category = RJ_BOOL;
			break;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			t->category = RJ_NUMBER;
			break;
		case DATEOID:
		case TIMESTAMPOID:
			t->category = RJ_DATETIME;
			break;
		case TIMESTAMPTZOID:
			t->category = RJ_TIMESTAMPTZ;
			break;
		case INTERVALOID:
			t->category = RJ_INTERVAL;
			break;
		case JSONOID:
		case JSONBOID:
			t->category = RJ_JSON;
			break;
		case TEXTOID:
		case VARCHAROID:
			t->category = RJ_TEXT;	/* textout, varcharout: the bytes as they are */
			break;
		default:
			if (OidIsValid(get_element_type(base)))
				t->category = RJ_ARRAY;
			else if (type_is_rowtype(base) || base >= FirstNormalObjectId)
				return false;	/* composite, or a type that may cast to json */
			else
				t->category = RJ_STRING;
			break;
	}
	return true;
}

/* a one-column row type of column att, for row_to_json() */
static TupleDesc
rowjson_onecol(Form_pg_attribute att)
{
	MemoryContext old = MemoryContextSwitchTo(CacheMemoryContext);
	TupleDesc	desc = CreateTemplateTupleDesc(1);

	TupleDescInitEntry(desc, 1, NameStr(att->attname), att->atttypid,
					   att->atttypmod, 0);
	TupleDescInitEntryCollation(desc, 1, att->attcollation);
	desc = BlessTupleDesc(desc);
	MemoryContextSwitchTo(old);
	return desc;
}

/* classify one column: its type, and for arrays its element type */
static void
rowjson_classify(Form_pg_attribute att, RowJsonColumn *col)
{
	bool		ok = rowjson_classify_type(att->atttypid, &col->type);

	if (ok && col->type.category == RJ_ARRAY)
	{
		Oid			elemtype = get_element_type(col->type.typid);

		ok = rowjson_classify_type(elemtype, &col->elem);
		/* an array of arrays is not a type PostgreSQL has */
		ok = ok && col->elem.category != RJ_ARRAY;
		if (ok)
			get_typlenbyvalalign(elemtype, &col->elmlen, &col->elmbyval,
								 &col->elmalign);
	}
	if (!ok)
	{
		col->type.category = RJ_ROW_TO_JSON;
		col->onecol = rowjson_onecol(att);
	}
}

/*
 * The cache entry of a relation, built or rebuilt as needed.  It stays
 * valid until the next call: an invalidation only marks it stale.
 */
RowJsonEntry *
todo_kafka_rowjson_entry(Relation rel)
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
		CacheRegisterSyscacheCallback(NAMESPACEOID, rowjson_namespace_changed, (Datum) 0);
	}

	entry = hash_search(rowjson_cache, &relid, HASH_ENTER, &found);
	if (found && !entry->stale && entry->natts == tupdesc->natts)
		return entry;
	if (found && entry->columns)
		rowjson_free_columns(entry);

	/* stale until complete, so an error half-way leaves no half entry */
	entry->stale = true;
	entry->columns = NULL;
	entry->source = NULL;
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
		rowjson_classify(att, col);
		initStringInfo(&name);
		escape_json(&name, NameStr(att->attname));
		appendStringInfoChar(&name, ':');
		col->quoted_name = MemoryContextStrdup(CacheMemoryContext, name.data);
		col->quoted_len = name.len;
		pfree(name.data);
		col->name = (text *) MemoryContextAlloc(CacheMemoryContext,
												VARHDRSZ + strlen(NameStr(att->attname)));
		SET_VARSIZE(col->name, VARHDRSZ + strlen(NameStr(att->attname)));
		memcpy(VARDATA(col->name), NameStr(att->attname), strlen(NameStr(att->attname)));
	}
	entry->source = MemoryContextStrdup(CacheMemoryContext,
										quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
																   RelationGetRelationName(rel)));
	entry->stale = false;
	return entry;
}

/* "schema"."table" of the entry's relation */
const char *
todo_kafka_rowjson_source(RowJsonEntry *entry)
{
	return entry->source;
}

/* column attnum's name as a text datum (kept in the cache: do not free) */
Datum
todo_kafka_rowjson_column_name(RowJsonEntry *entry, int attnum)
{
	return PointerGetDatum(entry->columns[attnum - 1].name);
}

/* a non-null value of column attnum as its type's output function writes it */
char *
todo_kafka_rowjson_column_text(RowJsonEntry *entry, int attnum, Datum value)
{
	return OutputFunctionCall(&entry->columns[attnum - 1].type.output, value);
}

/*
 * A json string of len bytes (no NUL among them).  When none needs escaping
 * the bytes go in with one copy; otherwise escape_json() writes them.
 */
static void
rowjson_string(StringInfo buf, const char *s, int len)
{
	int			i;

	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c < ' ' || c == '"' || c == '\\')
		{
			char	   *copy = pnstrdup(s, len);

			escape_json(buf, copy);
			pfree(copy);
			return;
		}
	}
	enlargeStringInfo(buf, len + 2);
	buf->data[buf->len++] = '"';
	memcpy(buf->data + buf->len, s, len);
	buf->len += len;
	buf->data[buf->len++] = '"';
	buf->data[buf->len] = '\0';
}

/* value, zero-padded to width digits, at p; returns the end */
static char *
rowjson_digits(char *p, int value, int width)
{
	char	   *end = p + width;

	while (width-- > 0)
	{
		p[width] = '0' + value % 10;
		value /= 10;
	}
	return end;
}

/* "2030-01-02T08:00:00.000000Z": UTC, six fraction digits */
static void
rowjson_timestamptz(StringInfo buf, Datum value)
{
	TimestampTz ts = DatumGetTimestampTz(value);
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts))
	{
		appendStringInfoString(buf, TIMESTAMP_IS_NOBEGIN(ts) ? "\"-infinity\"" : "\"infinity\"");
		return;
	}
	/* no time zone pointer: the fields of the UTC time */
	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	if (tm.tm_year < 1 || tm.tm_year > 9999)
	{
		/* RFC 3339 has four-digit years: keep ISO 8601's form, at UTC */
		char		dt[MAXDATELEN + 1];
		int			tz = 0;

		appendStringInfoChar(buf, '"');
		appendStringInfoString(buf, JsonEncodeDateTime(dt, value, TIMESTAMPTZOID, &tz));
		appendStringInfoChar(buf, '"');
		return;
	}
	{
		/* "YYYY-MM-DDTHH:MM:SS.ffffffZ" by hand: snprintf was most of it */
		char		out[sizeof("\"2030-01-02T08:00:00.000000Z\"")];
		char	   *p = out;

		*p++ = '"';
		p = rowjson_digits(p, tm.tm_year, 4);
		*p++ = '-';
		p = rowjson_digits(p, tm.tm_mon, 2);
		*p++ = '-';
		p = rowjson_digits(p, tm.tm_mday, 2);
		*p++ = 'T';
		p = rowjson_digits(p, tm.tm_hour, 2);
		*p++ = ':';
		p = rowjson_digits(p, tm.tm_min, 2);
		*p++ = ':';
		p = rowjson_digits(p, tm.tm_sec, 2);
		*p++ = '.';
		p = rowjson_digits(p, (int) fsec, 6);
		*p++ = 'Z';
		*p++ = '"';
		appendBinaryStringInfo(buf, out, p - out);
	}
}

/* ISO 8601 duration, as IntervalStyle = iso_8601 writes it: "PT15M", "P1D" */
static void
rowjson_interval(StringInfo buf, Datum value)
{
	Interval   *span = DatumGetIntervalP(value);
	struct pg_itm itm;
	char		out[MAXDATELEN + 1];

#ifdef INTERVAL_NOT_FINITE
	if (INTERVAL_NOT_FINITE(span))
	{
		appendStringInfoString(buf, INTERVAL_IS_NOBEGIN(span) ? "\"-infinity\"" : "\"infinity\"");
		return;
	}
#endif
	interval2itm(*span, &itm);
	EncodeInterval(&itm, INTSTYLE_ISO_8601, out);
	appendStringInfoChar(buf, '"');
	appendStringInfoString(buf, out);
	appendStringInfoChar(buf, '"');
}

/* one non-null value of a scalar type (not RJ_ARRAY or RJ_ROW_TO_JSON) */
static void
rowjson_scalar(StringInfo buf, RowJsonType *t, Datum value)
{
	char	   *out;

	switch (t->category)
	{
		case RJ_BOOL:
			appendStringInfoString(buf, DatumGetBool(value) ? "true" : "false");
			return;
		case RJ_DATETIME:
			{
				char		dt[MAXDATELEN + 1];

				appendStringInfoChar(buf, '"');
				appendStringInfoString(buf, JsonEncodeDateTime(dt, value, t->typid, NULL));
				appendStringInfoChar(buf, '"');
				return;
			}
		case RJ_TIMESTAMPTZ:
			rowjson_timestamptz(buf, value);
			return;
		case RJ_INTERVAL:
			rowjson_interval(buf, value);
			return;
		case RJ_TEXT:
			{
				struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));

				rowjson_string(buf, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
				if ((Pointer) v != DatumGetPointer(value))
					pfree(v);
				return;
			}
		default:
			break;
	}

	out = OutputFunctionCall(&t->output, value);
	if (t->category == RJ_JSON ||
		(t->category == RJ_NUMBER && IsValidJsonNumber(out, strlen(out))))
		appendStringInfoString(buf, out);
	else
		rowjson_string(buf, out, strlen(out));
}

/* one dimension of an array, as array_to_json() nests them */
static void
rowjson_array_dim(StringInfo buf, RowJsonColumn *col, int dim, int ndims,
				  int *dims, Datum *vals, bool *nulls, int *valcount)
{
	int			i;

	appendStringInfoChar(buf, '[');
	for (i = 1; i <= dims[dim]; i++)
	{
		if (i > 1)
			appendStringInfoChar(buf, ',');
		if (dim + 1 == ndims)
		{
			if (nulls[*valcount])
				appendStringInfoString(buf, "null");
			else
				rowjson_scalar(buf, &col->elem, vals[*valcount]);
			(*valcount)++;
		}
		else
			rowjson_array_dim(buf, col, dim + 1, ndims, dims, vals, nulls, valcount);
	}
	appendStringInfoChar(buf, ']');
}

static void
rowjson_array(StringInfo buf, RowJsonColumn *col, Datum value)
{
	ArrayType  *v = DatumGetArrayTypeP(value);
	int			ndim = ARR_NDIM(v);
	int		   *dims = ARR_DIMS(v);
	Datum	   *vals;
	bool	   *nulls;
	int			nitems;
	int			count = 0;

	if (ArrayGetNItems(ndim, dims) <= 0)
	{
		appendStringInfoString(buf, "[]");
		return;
	}
	deconstruct_array(v, ARR_ELEMTYPE(v), col->elmlen, col->elmbyval,
					  col->elmalign, &vals, &nulls, &nitems);
	rowjson_array_dim(buf, col, 0, ndim, dims, vals, nulls, &count);
	pfree(vals);
	pfree(nulls);
}

/* "name":value by row_to_json() of a one-column row */
static void
rowjson_member_by_row_to_json(StringInfo buf, RowJsonColumn *col, Datum value,
							  bool isnull)
{
	HeapTuple	tuple = heap_form_tuple(col->onecol, &value, &isnull);
	text	   *json = DatumGetTextPP(DirectFunctionCall1(row_to_json,
														  heap_copy_tuple_as_datum(tuple, col->onecol)));
	char	   *p = VARDATA_ANY(json);
	int			len = VARSIZE_ANY_EXHDR(json);

	/* {"name":value} -> "name":value */
	appendBinaryStringInfo(buf, p + 1, len - 2);
}

/*
 * The row, given as its deformed values (heap_deform_tuple), as json (see
 * the file header for the form).  With only_cols (indexed by attnum - 1),
 * just those columns, in column order.  Returns a json (text) datum.
 */
Datum
todo_kafka_row_json(RowJsonEntry *entry, const Datum *values, const bool *isnull,
					const bool *only_cols)
{
	StringInfoData buf;
	bool		first = true;
	int			i;

	/* the text datum is built in place: room for its header first */
	initStringInfo(&buf);
	appendStringInfoSpaces(&buf, VARHDRSZ);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < entry->natts; i++)
	{
		RowJsonColumn *col = &entry->columns[i];

		if (col->dropped || (only_cols && !only_cols[i]))
			continue;
		if (!first)
			appendStringInfoChar(&buf, ',');
		first = false;
		if (col->type.category == RJ_ROW_TO_JSON)
		{
			rowjson_member_by_row_to_json(&buf, col, values[i], isnull[i]);
			continue;
		}
		appendBinaryStringInfo(&buf, col->quoted_name, col->quoted_len);
		if (isnull[i])
			appendStringInfoString(&buf, "null");
		else if (col->type.category == RJ_ARRAY)
			rowjson_array(&buf, col, values[i]);
		else
			rowjson_scalar(&buf, &col->type, values[i]);
	}
	appendStringInfoChar(&buf, '}');
	SET_VARSIZE(buf.data, buf.len);
	return PointerGetDatum(buf.data);
}
