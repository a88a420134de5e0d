/*-------------------------------------------------------------------------
 *
 * rowjson_cache.h
 *	  the per-table rendering plan: built by rowjson_cache.c, read by rowjson.c
 *
 * rowjson_cache.c builds one RowJsonEntry per captured table (a category
 * and output function per column, the column names, the table's name) and
 * keeps it in CacheMemoryContext; rowjson.c renders rows with it.  The
 * capture trigger sees only the opaque RowJsonEntry and the functions
 * declared in todo_kafka.h.
 *
 * IDENTIFICATION
 *	  extension/rowjson_cache.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TODO_KAFKA_ROWJSON_CACHE_H
#define TODO_KAFKA_ROWJSON_CACHE_H

#include "access/tupdesc.h"
#include "fmgr.h"

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

#endif							/* TODO_KAFKA_ROWJSON_CACHE_H */
