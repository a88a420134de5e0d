/*
 * extension/sql/08_audit_purge.sql: the audit trail's retention, and the
 * record of every purge.
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
 * reads it; it is also an admin operation (record_admin_operation(),
 * 15_admin_audit.sql).  A refused purge leaves nothing but the server
 * log's ERROR.
 */

/* the retention floor: the module's superuser-only setting, as an interval */
CREATE OR REPLACE FUNCTION todo_kafka.audit_retention()
 RETURNS interval
 LANGUAGE c
 STABLE STRICT
AS '$libdir/todo_kafka', $function$todo_kafka_audit_retention$function$;

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
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.audit_purges_id_seq', '');

CREATE OR REPLACE FUNCTION todo_kafka.audit_purges_append_only()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
	RAISE EXCEPTION 'todo_kafka.audit_purges is append-only: % is not allowed', TG_OP
		USING ERRCODE = 'insufficient_privilege',
			  HINT = 'Rows are added by todo_kafka.purge_audit() only.';
END
$function$;

CREATE TRIGGER audit_purges_append_only BEFORE UPDATE OR DELETE ON todo_kafka.audit_purges
	FOR EACH ROW EXECUTE FUNCTION todo_kafka.audit_purges_append_only();

CREATE TRIGGER audit_purges_no_truncate BEFORE TRUNCATE ON todo_kafka.audit_purges
	FOR EACH STATEMENT EXECUTE FUNCTION todo_kafka.audit_purges_append_only();

ALTER TABLE todo_kafka.audit_purges ENABLE ALWAYS TRIGGER audit_purges_append_only;

ALTER TABLE todo_kafka.audit_purges ENABLE ALWAYS TRIGGER audit_purges_no_truncate;

/*
 * Remove the entries recorded before now() - p_older_than (NULL: the
 * retention), never below the retention floor, as a prefix of each chain
 * (an entry stays while an older-numbered one of its chain must stay, so
 * what remains still verifies), keep the hash of the last purged entry as
 * the chain's anchor, and record the purge.  Returns the number removed.
 */
CREATE OR REPLACE FUNCTION todo_kafka.purge_audit(p_older_than interval DEFAULT NULL::interval)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
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
		PERFORM todo_kafka.record_admin_operation('audit_purge', 'todo_kafka.audit_log',
			jsonb_build_object('older_than', v_period::text, 'cutoff', v_cutoff,
							   'retention', v_floor::text, 'entries', v_total, 'anchors', v_anchors),
			'succeeded');
	END IF;
	RETURN v_total;
END
$function$;
