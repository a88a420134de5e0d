/*-------------------------------------------------------------------------
 *
 * rowjson.c
 *	  row images as JSON for the capture trigger
 *
 * The before and after images of a captured row are stored as json, in the
 * form row_to_json() gives, except for the values whose text depends on the
 * writing session's settings (the message contract):
 *	 timestamptz	UTC, RFC 3339 with a "Z" and always six fraction digits
 *					("2030-01-02T08:00:00.000000Z"), whatever TimeZone says
 *	 interval		ISO 8601 durations ("PT15M", "P1D", "P1DT2H"), whatever
 *					IntervalStyle says
 * in scalars and arrays alike (date and timestamp keep row_to_json()'s).
 *
 * Categories (set per table by rowjson_cache.c) mirror json.c's
 * datum_to_json(): NULL -> null, bool -> true / false, numbers as written
 * unless NaN or Infinity (then quoted), date and timestamp in ISO 8601,
 * json and jsonb as they are, arrays nested as array_to_json() does, the
 * rest as escaped strings; domains use their base type's.  A column not
 * classified the way json.c would (a composite, an enum or another
 * user-defined type, which may carry a cast to json, or an array of those)
 * is rendered by row_to_json() of a one-column row, so its text never
 * differs from row_to_json()'s (a nested timestamptz follows TimeZone).
 *
 * Speed: the trigger passes deformed values; strings with nothing to
 * escape go in with one copy, and the json is built in place as a text.
 *
 * IDENTIFICATION
 *	  extension/rowjson.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/jsonapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "rowjson_cache.h"
#include "todo_kafka.h"

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
rowjson_render_row(RowJsonEntry *entry, const Datum *values, const bool *isnull,
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
