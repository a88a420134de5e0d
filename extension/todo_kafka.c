/*-------------------------------------------------------------------------
 *
 * todo_kafka.c
 *	  module entry point: settings, per-transaction context and the
 *	  relay wake-up at commit
 *
 * Settings (each may be SET LOCAL for one transaction):
 *	 todo_kafka.actor			who made the change; empty = api_user, else the
 *								current role outside SECURITY DEFINER functions
 *	 todo_kafka.correlation_id	empty = one generated id per transaction,
 *								kept in a static buffer cleared at commit/abort
 *	 todo_kafka.traceparent		W3C trace context stamped on each event
 *	 todo_kafka.api_user		(internal) the task API functions' p_user_id,
 *								confined to them by a function-level SET
 *	 todo_kafka.audit_purge		(superuser) set only by purge_audit()
 *	 todo_kafka.audit_retention	(superuser) purge_audit()'s minimum period,
 *								read in C so a placeholder cannot lower it
 *	 todo_kafka.push_allowed_hosts, todo_kafka.push_gateway_allowed_hosts
 *								(superuser): push_allowlist.c
 *
 * Waking the relay: NOTIFY takes a database-wide lock at commit (DESIGN.md,
 * the NOTIFY trap), so a transaction that wrote the outbox notifies only
 * when the relay holds the "sleeping" advisory lock (TODO_KAFKA_LOCK_CLASS,
 * TODO_KAFKA_LOCK_SLEEPING): one conditional lock-manager probe at
 * PRE_COMMIT, at most one empty NOTIFY per transaction.  The relay
 * re-checks the outbox after taking the lock and keeps a timed poll, so a
 * writer that probed just before it fell asleep is not lost.
 *
 * IDENTIFICATION
 *	  extension/todo_kafka.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "todo_kafka.h"

#if PG_VERSION_NUM >= 180000
PG_MODULE_MAGIC_EXT(.name = "todo_kafka",.version = TODO_KAFKA_VERSION);
#else
PG_MODULE_MAGIC;
#endif

void		_PG_init(void);

static char *tk_actor = NULL;
static char *tk_api_user = NULL;
static char *tk_correlation_id = NULL;
static char *tk_traceparent = NULL;
static bool tk_audit_purge = false;
static int	tk_audit_retention_min = 90 * MINS_PER_HOUR * HOURS_PER_DAY;

/* per-transaction state, reset by tk_xact_callback */
static bool tk_wrote_outbox = false;
static char tk_xact_correlation_id[UUID_LEN * 2 + 5];

static bool tk_check_traceparent(char **newval, void **extra, GucSource source);
static void tk_xact_callback(XactEvent event, void *arg);

void
_PG_init(void)
{
	DefineCustomStringVariable("todo_kafka.actor",
							   "Who is making changes, stamped on each outbox event.",
							   "Empty means the user a task API call acts for, else the current role.",
							   &tk_actor,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("todo_kafka.api_user",
							   "The user a task API function is acting for.",
							   "Set by the task API functions for their own duration; "
							   "the actor when todo_kafka.actor is empty.",
							   &tk_api_user,
							   "",
							   PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("todo_kafka.correlation_id",
							   "Correlation id stamped on each outbox event.",
							   "Empty means one generated id per transaction.",
							   &tk_correlation_id,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("todo_kafka.traceparent",
							   "W3C traceparent stamped on each outbox event.",
							   "Empty means none.",
							   &tk_traceparent,
							   "",
							   PGC_USERSET,
							   0,
							   tk_check_traceparent, NULL, NULL);
	DefineCustomBoolVariable("todo_kafka.audit_purge",
							 "Set by todo_kafka.purge_audit() while it removes expired audit entries.",
							 "The audit log's append-only trigger lets deletes through only while this is on.",
							 &tk_audit_purge,
							 false,
							 PGC_SUSET,
							 GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_NO_RESET_ALL,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("todo_kafka.audit_retention",
							"Audit entries are kept at least this long: purge_audit() refuses a shorter period.",
							"Only a superuser can change it; 0 removes the floor.",
							&tk_audit_retention_min,
							90 * MINS_PER_HOUR * HOURS_PER_DAY,
							0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);
	todo_kafka_define_push_settings();	/* push_allowlist.c */
	MarkGUCPrefixReserved("todo_kafka");

	RegisterXactCallback(tk_xact_callback, NULL);
}

/* traceparent: version-traceid-parentid-flags, lower-case hex (W3C) */
static bool
tk_check_traceparent(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;
	static const int lens[4] = {2, 32, 16, 2};
	int			part;

	if (v == NULL || v[0] == '\0')
		return true;
	for (part = 0; part < 4; part++)
	{
		int			i;

		for (i = 0; i < lens[part]; i++, v++)
		{
			if (!((*v >= '0' && *v <= '9') || (*v >= 'a' && *v <= 'f')))
				goto bad;
		}
		if (part < 3 && *v++ != '-')
			goto bad;
	}
	if (*v == '\0')
		return true;
bad:
	GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
	GUC_check_errmsg("invalid traceparent: \"%s\"", *newval);
	GUC_check_errhint("Use the W3C form 00-<32 hex digits>-<16 hex digits>-<2 hex digits>, in lower case.");
	return false;
}

const char *
todo_kafka_actor(void)
{
	if (tk_actor != NULL && tk_actor[0] != '\0')
		return tk_actor;
	if (tk_api_user != NULL && tk_api_user[0] != '\0')
		return tk_api_user;
	return GetUserNameFromId(GetOuterUserId(), false);
}

/* session_user: the role the session logged in as, not forgeable by SET */
const char *
todo_kafka_db_role(void)
{
	return GetUserNameFromId(GetSessionUserId(), false);
}

/* a new random (version 4) uuid, palloc'd */
Datum
todo_kafka_random_uuid(void)
{
	pg_uuid_t  *uuid = palloc(sizeof(pg_uuid_t));

	if (!pg_strong_random(uuid->data, UUID_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));
	uuid->data[6] = (uuid->data[6] & 0x0f) | 0x40;	/* version 4 */
	uuid->data[8] = (uuid->data[8] & 0x3f) | 0x80;	/* RFC 4122 variant */
	return UUIDPGetDatum(uuid);
}

const char *
todo_kafka_correlation_id(void)
{
	if (tk_correlation_id != NULL && tk_correlation_id[0] != '\0')
		return tk_correlation_id;
	if (tk_xact_correlation_id[0] == '\0')
	{
		Datum		text = DirectFunctionCall1(uuid_out, todo_kafka_random_uuid());

		strlcpy(tk_xact_correlation_id, DatumGetCString(text),
				sizeof(tk_xact_correlation_id));
	}
	return tk_xact_correlation_id;
}

const char *
todo_kafka_traceparent(void)
{
	if (tk_traceparent != NULL && tk_traceparent[0] != '\0')
		return tk_traceparent;
	return NULL;
}

void
todo_kafka_note_outbox_write(void)
{
	tk_wrote_outbox = true;
}

/* Is the relay asleep, i.e. holding the sleeping advisory lock? */
static bool
tk_relay_sleeping(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, TODO_KAFKA_LOCK_CLASS,
						 TODO_KAFKA_LOCK_SLEEPING, 2);
	if (LockAcquire(&tag, ShareLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, ShareLock, false);
	return false;
}

static void
tk_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (tk_wrote_outbox && tk_relay_sleeping())
				Async_Notify(TODO_KAFKA_NOTIFY_CHANNEL, NULL);
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			tk_wrote_outbox = false;
			tk_xact_correlation_id[0] = '\0';
			break;
		default:
			break;
	}
}

PG_FUNCTION_INFO_V1(todo_kafka_current_correlation_id);

/*
 * todo_kafka_current_correlation_id
 *		current_correlation_id() RETURNS text
 *
 * The correlation id that events written now carry: the setting when set,
 * else this transaction's generated id.  Lets SQL put it into event data.
 */
Datum
todo_kafka_current_correlation_id(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(todo_kafka_correlation_id()));
}

/* todo_kafka.audit_retention() -> interval: the floor of purge_audit() */
PG_FUNCTION_INFO_V1(todo_kafka_audit_retention);
Datum
todo_kafka_audit_retention(PG_FUNCTION_ARGS)
{
	Interval   *result = palloc0(sizeof(Interval));
	int			mins_per_day = MINS_PER_HOUR * HOURS_PER_DAY;

	result->day = tk_audit_retention_min / mins_per_day;
	result->time = (TimeOffset) (tk_audit_retention_min % mins_per_day) * SECS_PER_MINUTE * USECS_PER_SEC;
	PG_RETURN_INTERVAL_P(result);
}
