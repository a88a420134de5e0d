/*-------------------------------------------------------------------------
 *
 * rowjson_cache.c
 *	  per-table cache of what the capture trigger needs to render a row
 *
 * Looking up, for every column of every captured row, the type's JSON
 * category and output function in the system caches (as row_to_json()
 * does) is costly on the single-row transactions of a task API.  So the
 * per-column work is done once per table and kept: an entry in
 * CacheMemoryContext, keyed by the relation OID, holds each column's
 * category (rowjson_cache.h), its type's output function (FmgrInfo: the json,
 * and the key and user columns' text), its name as a text datum (the
 * changed-columns array) and the table's quoted qualified name (the
 * event's source), so a captured change makes no system-cache lookup.
 *
 * Invalidation: a relcache invalidation of the relation (ALTER TABLE,
 * DROP) marks its entry stale; a schema rename does not invalidate the
 * relcache, so a pg_namespace syscache callback marks every entry stale.
 * Callbacks only mark, never free: one can run in the middle of rendering
 * a row, so an entry stays valid until the next rowjson_lookup() rebuilds
 * it.  A rebuild that fails half-way leaves the entry stale.
 *
 * IDENTIFICATION
 *	  extension/rowjson_cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "rowjson_cache.h"
#include "todo_kafka.h"

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
 * stay valid until the next rowjson_lookup() rebuilds them.
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
rowjson_lookup(Relation rel)
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
rowjson_table_name(RowJsonEntry *entry)
{
	return entry->source;
}

/* column attnum's name as a text datum (kept in the cache: do not free) */
Datum
rowjson_column_name(RowJsonEntry *entry, int attnum)
{
	return PointerGetDatum(entry->columns[attnum - 1].name);
}

/* a non-null value of column attnum as its type's output function writes it */
char *
rowjson_column_text(RowJsonEntry *entry, int attnum, Datum value)
{
	return OutputFunctionCall(&entry->columns[attnum - 1].type.output, value);
}
