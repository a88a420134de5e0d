
/* ---------------------------------------------------------------------------
 * One role per service, and an audit retention no service can shorten
 * (issue 16).
 *
 * Up to 0.4.0 the audit, notify and project services all logged in as a
 * member of todo_kafka_consumer, which could call every service's
 * functions: the notifier (the daemon that talks to outside servers) could
 * append audit entries or purge_audit('0') the whole trail.  Now each
 * service has a role with only the functions its C code calls
 * (consumers/<service>/, plus the runtime's topic_of()):
 *
 *	 todo_kafka_audit_writer	audit_append, purge_audit (the service purges
 *								by itself, retention_days), verify_audit
 *								(verify_interval_s), topic_of
 *	 todo_kafka_notifier		notification_plan, notification_targets,
 *								delivery_claim/_done/_retry, deliver_in_app,
 *								push_subscription_gone,
 *								purge_notification_deliveries, topic_of
 *	 todo_kafka_projector		project_apply, project_offsets,
 *								project_snapshot, project_prune_snapshots,
 *								project_snapshots, project_restore,
 *								project_reset, topic_of; SELECT task_view
 *	 todo_kafka_operator		(0.4.0, the dlq tool) and now purge_audit,
 *								audit_retention
 *	 todo_kafka_auditor			(0.1.0) and now SELECT audit_purges,
 *								audit_retention
 *
 * todo_kafka_consumer is kept for existing installs as a deprecated union:
 * it has no grants of its own any more, only membership of the three
 * service roles, so a login that is a member keeps working (and keeps
 * every service's rights: give each service its own login, README Roles).
 *
 * The retention floor.  purge_audit() refuses a period shorter than
 * todo_kafka.audit_retention (default 90 days, the specification's), a
 * PGC_SUSET setting of the module: only a superuser (or a role granted SET
 * on it) can change it, in postgresql.conf, ALTER SYSTEM, ALTER DATABASE/
 * ROLE ... SET or a session; 0 removes the floor.  It is read through
 * audit_retention(), a C function, never current_setting(): calling it
 * loads the module, which drops any placeholder value a non-superuser SET
 * before the module was loaded, and reads the module's own variable.
 * purge_audit() without an argument (or NULL) purges at the retention.
 *
 * Each purge that removes entries is recorded in todo_kafka.audit_purges
 * (who: session_user, which SET ROLE does not change; when; the period and
 * cutoff; the floor in force; how many; each chain's new anchor), in the
 * purge's own transaction, append-only like the audit log; the auditor
 * reads it.  A refused purge leaves nothing but the server log's ERROR.
 * ------------------------------------------------------------------------- */

DO $roles$
DECLARE
	r	text;
BEGIN
	FOREACH r IN ARRAY ARRAY['todo_kafka_audit_writer', 'todo_kafka_notifier', 'todo_kafka_projector']
	LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
			EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
END
$roles$;

GRANT USAGE ON SCHEMA todo_kafka
	TO todo_kafka_audit_writer, todo_kafka_notifier, todo_kafka_projector;

/* the retention floor: the module's superuser-only setting, as an interval */
CREATE FUNCTION todo_kafka.audit_retention()
	RETURNS interval
	AS 'MODULE_PATHNAME', 'todo_kafka_audit_retention' LANGUAGE C STABLE STRICT;

/* ---------------------------------------------------------------------------
 * The purge record
 * ------------------------------------------------------------------------- */
CREATE TABLE todo_kafka.audit_purges (
	id					bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	purged_at			timestamptz NOT NULL,	/* the purge's transaction time */
	purged_by			text NOT NULL,			/* session_user: the login */
	older_than			interval NOT NULL,		/* the period asked for */
	cutoff				timestamptz NOT NULL,	/* entries recorded before it went */
	retention			interval NOT NULL,		/* todo_kafka.audit_retention then */
	entries				bigint NOT NULL CHECK (entries > 0),
	anchors				jsonb NOT NULL			/* [{chain, anchor_seq, anchor_hash, entries}] */
);
COMMENT ON TABLE todo_kafka.audit_purges IS
	'every purge_audit() that removed audit entries: who, when, how many, and the anchor it left per chain';
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.audit_purges', '');

CREATE FUNCTION todo_kafka.audit_purges_append_only()
	RETURNS pg_catalog.trigger LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RAISE EXCEPTION 'todo_kafka.audit_purges is append-only: % is not allowed', TG_OP
		USING ERRCODE = 'insufficient_privilege',
			  HINT = 'Rows are added by todo_kafka.purge_audit() only.';
END
$$;
CREATE TRIGGER audit_purges_append_only BEFORE UPDATE OR DELETE ON todo_kafka.audit_purges
	FOR EACH ROW EXECUTE FUNCTION todo_kafka.audit_purges_append_only();
CREATE TRIGGER audit_purges_no_truncate BEFORE TRUNCATE ON todo_kafka.audit_purges
	FOR EACH STATEMENT EXECUTE FUNCTION todo_kafka.audit_purges_append_only();
ALTER TABLE todo_kafka.audit_purges ENABLE ALWAYS TRIGGER audit_purges_append_only;
ALTER TABLE todo_kafka.audit_purges ENABLE ALWAYS TRIGGER audit_purges_no_truncate;

/*
 * purge_audit(): as in 0.3.0 (a prefix of each chain, anchored), but never
 * below the retention floor, and recorded.  NULL (the default) means the
 * configured retention.
 */
DROP FUNCTION todo_kafka.purge_audit(interval);
CREATE FUNCTION todo_kafka.purge_audit(p_older_than interval DEFAULT NULL)
	RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_floor		interval := todo_kafka.audit_retention();
	v_period	interval := coalesce(p_older_than, v_floor);
	v_cutoff	timestamptz;
	v_chain		integer;
	v_keep		bigint;
	v_last_seq	bigint;
	v_last_hash	bytea;
	v_count		bigint;
	v_total		bigint := 0;
	v_anchors	jsonb := '[]';
BEGIN
	IF v_period < interval '0' THEN
		RAISE EXCEPTION 'invalid retention period: %', v_period
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a positive interval, e.g. ''90 days''.';
	END IF;
	IF v_period < v_floor THEN
		RAISE EXCEPTION 'audit entries are kept at least %: a purge of entries older than % is refused',
				v_floor, v_period
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a period of at least the retention (or none: purge_audit() uses it). '
					  'The retention is the setting todo_kafka.audit_retention, which only a superuser can change.';
	END IF;
	v_cutoff := now() - v_period;
	PERFORM set_config('todo_kafka.audit_purge', 'on', true);
	FOR v_chain IN SELECT c.chain FROM todo_kafka.audit_chains c ORDER BY c.chain FOR UPDATE
	LOOP
		SELECT a.seq INTO v_keep FROM todo_kafka.audit_log a
		 WHERE a.chain = v_chain AND a.recorded_at >= v_cutoff
		 ORDER BY a.seq LIMIT 1;
		IF v_keep IS NULL THEN
			SELECT a.seq, a.hash INTO v_last_seq, v_last_hash FROM todo_kafka.audit_log a
			 WHERE a.chain = v_chain ORDER BY a.seq DESC LIMIT 1;
		ELSE
			SELECT a.seq, a.hash INTO v_last_seq, v_last_hash FROM todo_kafka.audit_log a
			 WHERE a.chain = v_chain AND a.seq < v_keep ORDER BY a.seq DESC LIMIT 1;
		END IF;
		CONTINUE WHEN v_last_seq IS NULL;
		DELETE FROM todo_kafka.audit_log a WHERE a.chain = v_chain AND a.seq <= v_last_seq;
		GET DIAGNOSTICS v_count = ROW_COUNT;
		v_total := v_total + v_count;
		UPDATE todo_kafka.audit_chains c SET anchor_seq = v_last_seq, anchor_hash = v_last_hash
		 WHERE c.chain = v_chain;
		v_anchors := v_anchors || jsonb_build_object('chain', v_chain, 'anchor_seq', v_last_seq,
													 'anchor_hash', encode(v_last_hash, 'hex'),
													 'entries', v_count);
	END LOOP;
	PERFORM set_config('todo_kafka.audit_purge', 'off', true);
	IF v_total > 0 THEN
		INSERT INTO todo_kafka.audit_purges
			(purged_at, purged_by, older_than, cutoff, retention, entries, anchors)
		VALUES (now(), session_user, v_period, v_cutoff, v_floor, v_total, v_anchors);
	END IF;
	RETURN v_total;
END
$$;

/* ---------------------------------------------------------------------------
 * Privileges
 * ------------------------------------------------------------------------- */
REVOKE ALL ON todo_kafka.audit_purges FROM PUBLIC;
REVOKE ALL ON FUNCTION
	todo_kafka.audit_retention(),
	todo_kafka.audit_purges_append_only(),
	todo_kafka.purge_audit(interval)
	FROM PUBLIC;

/* the deprecated union loses every grant of its own (schema USAGE aside) ... */
DO $revoke$
DECLARE
	obj		text;
BEGIN
	FOR obj IN
		SELECT DISTINCT 'FUNCTION ' || p.oid::regprocedure FROM pg_catalog.pg_proc p,
			   pg_catalog.aclexplode(p.proacl) a
		 WHERE p.pronamespace = 'todo_kafka'::regnamespace AND a.grantee = 'todo_kafka_consumer'::regrole
		UNION
		SELECT DISTINCT 'TABLE ' || c.oid::regclass FROM pg_catalog.pg_class c,
			   pg_catalog.aclexplode(c.relacl) a
		 WHERE c.relnamespace = 'todo_kafka'::regnamespace AND a.grantee = 'todo_kafka_consumer'::regrole
	LOOP
		EXECUTE 'REVOKE ALL ON ' || obj || ' FROM todo_kafka_consumer';
	END LOOP;
END
$revoke$;

/* ... each service's role gets its own ... */
GRANT EXECUTE ON FUNCTION
	todo_kafka.topic_of(text),
	todo_kafka.audit_append(jsonb),
	todo_kafka.purge_audit(interval),
	todo_kafka.verify_audit()
	TO todo_kafka_audit_writer;

GRANT EXECUTE ON FUNCTION
	todo_kafka.topic_of(text),
	todo_kafka.notification_plan(text, text, text[], uuid, text, timestamptz, boolean, timestamptz),
	todo_kafka.notification_targets(text, text),
	todo_kafka.delivery_claim(text, text, text, text, boolean),
	todo_kafka.delivery_done(text, text, text, text, text, text),
	todo_kafka.delivery_retry(text, text, text, text),
	todo_kafka.deliver_in_app(text, text, text, uuid, text, text),
	todo_kafka.push_subscription_gone(text),
	todo_kafka.purge_notification_deliveries(interval)
	TO todo_kafka_notifier;

GRANT EXECUTE ON FUNCTION
	todo_kafka.topic_of(text),
	todo_kafka.project_apply(text, jsonb),
	todo_kafka.project_offsets(text),
	todo_kafka.project_snapshot(integer),
	todo_kafka.project_prune_snapshots(integer),
	todo_kafka.project_snapshots(),
	todo_kafka.project_restore(bigint),
	todo_kafka.project_reset()
	TO todo_kafka_projector;
GRANT SELECT ON todo_kafka.task_view TO todo_kafka_projector;

/* purging the audit trail is also an operator's action; reading its record, the auditor's */
GRANT EXECUTE ON FUNCTION todo_kafka.purge_audit(interval) TO todo_kafka_operator;
GRANT SELECT ON todo_kafka.audit_purges TO todo_kafka_auditor;
GRANT EXECUTE ON FUNCTION todo_kafka.audit_retention() TO todo_kafka_operator, todo_kafka_auditor;

/* ... and the union is their sum (quietly, when a former install made it so) */
DO $union$
DECLARE
	r	text;
BEGIN
	FOREACH r IN ARRAY ARRAY['todo_kafka_audit_writer', 'todo_kafka_notifier', 'todo_kafka_projector']
	LOOP
		IF NOT pg_catalog.pg_has_role('todo_kafka_consumer', r, 'MEMBER') THEN
			EXECUTE pg_catalog.format('GRANT %I TO todo_kafka_consumer', r);
		END IF;
	END LOOP;
END
$union$;
