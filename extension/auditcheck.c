/*-------------------------------------------------------------------------
 *
 * auditcheck.c
 *	  the validation of audit_append()'s records, in one pass over the batch
 *
 * audit_append() (extension/sql/07_audit.sql) refuses a batch
 * with 22023 naming the first bad element (array index from 0) and its
 * first bad field.  The rules are 0.3.0's audit_record(), checked in its
 * order; done in SQL they cost one executor expression per rule and
 * record (about 20 us a record, a third of a 500-record append), here a
 * few key lookups in the jsonb containers:
 *	 record				an object
 *	 partition			a number whose text is 1-9 digits
 *	 offset				a number whose text is 1-18 digits
 *	 topic				a string or null (or absent)
 *	 data				an object, whose
 *	 data.event_id		is a uuid string in the 8-4-4-4-12 form
 *	 data.operation		INSERT, UPDATE or DELETE
 *	 data.event_type	a non-empty string
 *	 data.timestamp		RFC 3339 by shape, each field in range
 *	 data.txid			null, or its text (what ->> gives) 1-18 digits
 *	 data.before/after	an object or null
 *	 data.changed_fields an array of strings (or of arrays of strings: 0.3.0's
 *					lax jsonpath let those through) or null
 *	 data.actor, db_role, table, task_id, user_id, correlation_id
 *						a string or null
 * "absent" counts as null throughout.  Digits are ASCII digits (0.3.0's
 * \d would also have let other Unicode digits through under an ICU
 * collation, only for the cast after it to fail).
 *
 * IDENTIFICATION
 *	  extension/auditcheck.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

/* the JSON type of a field, ABSENT when the key is missing */
typedef enum
{
	JT_ABSENT,
	JT_NULL,
	JT_STRING,
	JT_NUMBER,
	JT_BOOL,
	JT_OBJECT,
	JT_ARRAY
} jtype;

static jtype
jtype_of(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return JT_NULL;
		case jbvString:
			return JT_STRING;
		case jbvNumeric:
			return JT_NUMBER;
		case jbvBool:
			return JT_BOOL;
		case jbvBinary:
			return JsonContainerIsObject(v->val.binary.data) ? JT_OBJECT : JT_ARRAY;
		default:
			return JT_NULL;		/* jbvArray/jbvObject: not found in containers */
	}
}

static jtype
field(JsonbContainer *obj, const char *key, JsonbValue *v)
{
	if (getKeyJsonValueFromContainer(obj, key, strlen(key), v) == NULL)
		return JT_ABSENT;
	return jtype_of(v);
}

static bool
is_null_or(jtype t, jtype allowed)
{
	return t == JT_ABSENT || t == JT_NULL || t == allowed;
}

/* s[0..len) is 1..maxlen ASCII digits */
static bool
all_digits(const char *s, int len, int maxlen)
{
	if (len < 1 || len > maxlen)
		return false;
	for (int i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* a number whose text (numeric_out) is 1..maxlen digits */
static bool
number_digits(const JsonbValue *v, int maxlen)
{
	char	   *s = DatumGetCString(DirectFunctionCall1(numeric_out,
														NumericGetDatum(v->val.numeric)));
	bool		ok = all_digits(s, strlen(s), maxlen);

	pfree(s);
	return ok;
}

static bool
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool
is_uuid(const char *s, int len)
{
	if (len != 36)
		return false;
	for (int i = 0; i < 36; i++)
	{
		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
		}
		else if (!is_hex(s[i]))
			return false;
	}
	return true;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
num2(const char *s)
{
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/*
 * ^\d\d\d\d-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)$
 * and then year >= 1, month 1-12, day within the month, hour < 24,
 * minute < 60, second <= 60, offset hours < 24 and minutes < 60.
 */
static bool
is_rfc3339(const char *s, int len)
{
	int			p = 19;
	int			year,
				month,
				day,
				mdays;
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (len < 20)
		return false;
	for (int i = 0; i < 19; i++)
	{
		bool		ok;

		switch (i)
		{
			case 4:
			case 7:
				ok = s[i] == '-';
				break;
			case 10:
				ok = s[i] == 'T' || s[i] == 't' || s[i] == ' ';
				break;
			case 13:
			case 16:
				ok = s[i] == ':';
				break;
			default:
				ok = is_digit(s[i]);
				break;
		}
		if (!ok)
			return false;
	}
	if (s[p] == '.')
	{
		int			n = 0;

		p++;
		while (p < len && is_digit(s[p]) && n < 10)
		{
			p++;
			n++;
		}
		if (n < 1 || n > 9)
			return false;
	}
	if (p >= len)
		return false;
	if (s[p] == 'Z' || s[p] == 'z')
	{
		if (p + 1 != len)
			return false;
	}
	else if (s[p] == '+' || s[p] == '-')
	{
		if (p + 6 != len || !is_digit(s[p + 1]) || !is_digit(s[p + 2]) || s[p + 3] != ':' ||
			!is_digit(s[p + 4]) || !is_digit(s[p + 5]))
			return false;
		if (num2(s + p + 1) >= 24 || num2(s + p + 4) >= 60)
			return false;
	}
	else
		return false;

	year = num2(s) * 100 + num2(s + 2);
	month = num2(s + 5);
	day = num2(s + 8);
	if (year < 1 || month < 1 || month > 12)
		return false;
	mdays = days[month - 1];
	if (month == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))
		mdays = 29;
	return day >= 1 && day <= mdays && num2(s + 11) < 24 && num2(s + 14) < 60 && num2(s + 17) <= 60;
}

/*
 * An element of changed_fields as 0.3.0 checked it (jsonb_path_exists(cf,
 * '$[*] ? (@.type() != "string")'), whose lax mode unwraps one level of
 * nested arrays): a string, or an array of strings only.
 */
static bool
strings_only(const JsonbValue *e)
{
	JsonbContainer *a;
	uint32		n;

	if (e->type == jbvString)
		return true;
	if (e->type != jbvBinary || !JsonContainerIsArray(e->val.binary.data))
		return false;
	a = e->val.binary.data;
	n = JsonContainerSize(a);
	for (uint32 i = 0; i < n; i++)
	{
		JsonbValue *x = getIthJsonbValueFromContainer(a, i);
		bool		ok = x != NULL && x->type == jbvString;

		if (x != NULL)
			pfree(x);
		if (!ok)
			return false;
	}
	return true;
}

/* the first bad field of one element, or NULL */
static const char *
check_record(JsonbValue *rec)
{
	JsonbContainer *r;
	JsonbContainer *d;
	JsonbValue	v;
	jtype		t;
	static const char *const strings[] = {"actor", "db_role", "table", "task_id", "user_id",
	"correlation_id"};
	static const char *const string_fields[] = {"data.actor", "data.db_role", "data.table",
	"data.task_id", "data.user_id", "data.correlation_id"};

	if (jtype_of(rec) != JT_OBJECT)
		return "record";
	r = rec->val.binary.data;
	if (field(r, "partition", &v) != JT_NUMBER || !number_digits(&v, 9))
		return "partition";
	if (field(r, "offset", &v) != JT_NUMBER || !number_digits(&v, 18))
		return "offset";
	if (!is_null_or(field(r, "topic", &v), JT_STRING))
		return "topic";
	if (field(r, "data", &v) != JT_OBJECT)
		return "data";
	d = v.val.binary.data;

	if (field(d, "event_id", &v) != JT_STRING || !is_uuid(v.val.string.val, v.val.string.len))
		return "data.event_id";
	if (field(d, "operation", &v) != JT_STRING ||
		!((v.val.string.len == 6 && memcmp(v.val.string.val, "INSERT", 6) == 0) ||
		  (v.val.string.len == 6 && memcmp(v.val.string.val, "UPDATE", 6) == 0) ||
		  (v.val.string.len == 6 && memcmp(v.val.string.val, "DELETE", 6) == 0)))
		return "data.operation";
	if (field(d, "event_type", &v) != JT_STRING || v.val.string.len == 0)
		return "data.event_type";
	if (field(d, "timestamp", &v) != JT_STRING || !is_rfc3339(v.val.string.val, v.val.string.len))
		return "data.timestamp";
	t = field(d, "txid", &v);
	if (!(t == JT_ABSENT || t == JT_NULL ||
		  (t == JT_STRING && all_digits(v.val.string.val, v.val.string.len, 18)) ||
		  (t == JT_NUMBER && number_digits(&v, 18))))
		return "data.txid";
	if (!is_null_or(field(d, "before", &v), JT_OBJECT))
		return "data.before";
	if (!is_null_or(field(d, "after", &v), JT_OBJECT))
		return "data.after";
	t = field(d, "changed_fields", &v);
	if (!is_null_or(t, JT_ARRAY))
		return "data.changed_fields";
	if (t == JT_ARRAY)
	{
		JsonbContainer *a = v.val.binary.data;
		uint32		n = JsonContainerSize(a);

		for (uint32 i = 0; i < n; i++)
		{
			JsonbValue *e = getIthJsonbValueFromContainer(a, i);
			bool		ok = e != NULL && strings_only(e);

			if (e != NULL)
				pfree(e);
			if (!ok)
				return "data.changed_fields";
		}
	}
	for (int i = 0; i < (int) lengthof(strings); i++)
		if (!is_null_or(field(d, strings[i], &v), JT_STRING))
			return string_fields[i];
	return NULL;
}

/*
 * todo_kafka.audit_check(p_records jsonb, OUT idx integer, OUT field text)
 *
 * The first element of the JSON array p_records that audit_append() must
 * refuse: its index (from 0) and the field at fault ("record",
 * "partition", ..., "data.correlation_id", as audit_append() names it in
 * its 22023 error); NULL when every element is good.  p_records must be
 * an array (audit_append() checks that first).  Internal: granted to
 * nobody.
 */
PG_FUNCTION_INFO_V1(todo_kafka_audit_check);

Datum
todo_kafka_audit_check(PG_FUNCTION_ARGS)
{
	Jsonb	   *records = PG_GETARG_JSONB_P(0);
	TupleDesc	tupdesc;
	uint32		n;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (!JB_ROOT_IS_ARRAY(records) || JB_ROOT_IS_SCALAR(records))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit records must be a JSON array")));

	n = JB_ROOT_COUNT(records);
	for (uint32 i = 0; i < n; i++)
	{
		JsonbValue *rec = getIthJsonbValueFromContainer(&records->root, i);
		const char *bad = check_record(rec);

		pfree(rec);
		if (bad != NULL)
		{
			Datum		values[2];
			bool		nulls[2] = {false, false};

			values[0] = Int32GetDatum((int32) i);
			values[1] = CStringGetTextDatum(bad);
			PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
															  values, nulls)));
		}
	}
	PG_RETURN_NULL();
}
