/*
 * extension/sql/13_dead_letters.sql: dead letters.  dead_letters holds the
 * outbox rows Kafka refused for good (relay_dead_letter() moves them here);
 * the dlq tool (todo_kafka_operator) lists them, replays them or the
 * dead-letter topic's messages (dead_letter_replays: a second replay needs
 * --force) and purges old ones (dead_letter_purges: where each partition
 * of the topic now starts).
 */

/* rows the relay could not publish for good (poison rows), kept for repair */
CREATE TABLE todo_kafka.dead_letters (
	id				bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	outbox_id		bigint NOT NULL,
	event_id		uuid NOT NULL,
	topic			text NOT NULL,
	reason			text NOT NULL,
	row_data		json NOT NULL,
	failed_at		timestamptz NOT NULL DEFAULT now()
);

/* ===========================================================================
 * The dead-letter tool (todo-kafka-dlq): which dead letters an operator
 * replayed, the relay's poison rows put back into the outbox, and purges.
 *
 * A dead letter is named by where it lies:
 *	 "<partition>:<offset>"	a message of the dead-letter topic (consumer
 *							services' and the relay's dead letters);
 *	 "db:<id>"				a row of todo_kafka.dead_letters (the relay's
 *							poison outbox rows, kept whole).
 * dead_letter_replays records each replay under that name.  The tool calls
 * dlq_claim_replay() in a transaction, produces the message, waits for
 * Kafka's acknowledgement and only then commits: so a replay that Kafka
 * did not take leaves no record, and two operators replaying the same dead
 * letter at once are serialized by the row lock (the second one is refused
 * once the first commits).  A second replay is refused unless forced; a
 * forced one counts up "replays".
 *
 * dlq_requeue_outbox() puts a poison row back into the outbox as a new row
 * (new id, the committing transaction's xid, the same event_id, so
 * consumers that already saw some of its messages drop the repeats) and
 * records the replay in the same transaction.
 *
 * Purge: dlq_purge() deletes dead_letters rows and replay records older
 * than the interval and remembers, per partition of the dead-letter topic,
 * the first offset to keep (dead_letter_purges), so the tool no longer
 * lists what was purged; Kafka's retention (or DeleteRecords, which the
 * tool also asks for) removes the messages themselves.
 * ======================================================================== */
CREATE TABLE todo_kafka.dead_letter_replays (
	dead_letter			text PRIMARY KEY,	/* "<partition>:<offset>" or "db:<id>" */
	origin_topic		text,
	origin_partition	integer,
	origin_offset		bigint,
	event_id			text,
	replays				integer NOT NULL DEFAULT 1 CHECK (replays >= 1),
	first_replayed_at	timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	last_replayed_at	timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	replayed_by			text NOT NULL DEFAULT session_user
);

CREATE TABLE todo_kafka.dead_letter_purges (
	topic				text NOT NULL,
	kafka_partition		integer NOT NULL CHECK (kafka_partition >= 0),
	keep_from_offset	bigint NOT NULL CHECK (keep_from_offset >= 0),
	purged_at			timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	PRIMARY KEY (topic, kafka_partition)
);

COMMENT ON TABLE todo_kafka.dead_letter_replays IS
	'dead letters replayed by todo-kafka-dlq (a second replay needs --force)';

SELECT pg_catalog.pg_extension_config_dump('todo_kafka.dead_letters', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.dead_letters_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.dead_letter_replays', '');
SELECT pg_catalog.pg_extension_config_dump('todo_kafka.dead_letter_purges', '');

/* the admin record of a claimed replay (15_admin_audit.sql); granted to nobody */
CREATE OR REPLACE FUNCTION todo_kafka.dlq_record_replay(p_dead_letter text, p_origin_topic text, p_origin_partition integer, p_origin_offset bigint, p_event_id text, p_force boolean, p_replays integer)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
	SELECT FROM todo_kafka.record_admin_operation('dlq_replay', p_dead_letter,
		jsonb_build_object('origin_topic', p_origin_topic, 'origin_partition', p_origin_partition,
						   'origin_offset', p_origin_offset, 'event_id', p_event_id,
						   'force', coalesce(p_force, false), 'replays', p_replays),
		'succeeded');
$function$;

/*
 * Claim the replay of one dead letter; call inside the transaction that
 * commits once Kafka acknowledged the replayed message.  Refuses (SQLSTATE
 * 23505) a dead letter replayed before, unless p_force.
 */
CREATE OR REPLACE FUNCTION todo_kafka.dlq_claim_replay(p_dead_letter text, p_origin_topic text, p_origin_partition integer, p_origin_offset bigint, p_event_id text, p_force boolean DEFAULT false)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v_prev		todo_kafka.dead_letter_replays;
BEGIN
	IF p_dead_letter IS NULL OR p_dead_letter !~ '^([0-9]+:[0-9]+|db:[0-9]+)$' THEN
		RAISE EXCEPTION 'invalid dead letter name: "%"', p_dead_letter
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Names are "<partition>:<offset>" of the dead-letter topic or "db:<id>" of todo_kafka.dead_letters.';
	END IF;
	INSERT INTO todo_kafka.dead_letter_replays
		(dead_letter, origin_topic, origin_partition, origin_offset, event_id)
	VALUES (p_dead_letter, p_origin_topic, p_origin_partition, p_origin_offset, p_event_id)
	ON CONFLICT (dead_letter) DO NOTHING;
	IF FOUND THEN
		PERFORM todo_kafka.dlq_record_replay(p_dead_letter, p_origin_topic, p_origin_partition,
											 p_origin_offset, p_event_id, p_force, 1);
		RETURN 1;
	END IF;
	SELECT * INTO v_prev FROM todo_kafka.dead_letter_replays r
	 WHERE r.dead_letter = p_dead_letter FOR UPDATE;
	IF NOT coalesce(p_force, false) THEN
		RAISE EXCEPTION 'dead letter % was already replayed', p_dead_letter
			USING ERRCODE = 'unique_violation',
				  DETAIL = format('Replayed %s time(s), last at %s by %s.', v_prev.replays,
								  to_char(v_prev.last_replayed_at AT TIME ZONE 'UTC',
										  'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
								  v_prev.replayed_by),
				  HINT = 'Replaying it again delivers it twice; use --force if that is what you want.';
	END IF;
	UPDATE todo_kafka.dead_letter_replays r
	   SET replays = r.replays + 1, last_replayed_at = clock_timestamp(), replayed_by = session_user
	 WHERE r.dead_letter = p_dead_letter;
	PERFORM todo_kafka.dlq_record_replay(p_dead_letter, p_origin_topic, p_origin_partition,
										 p_origin_offset, p_event_id, p_force, v_prev.replays + 1);
	RETURN v_prev.replays + 1;
END
$function$;

/* replay records, for listing (all of them; the tool matches by name) */
CREATE OR REPLACE FUNCTION todo_kafka.dlq_replays()
 RETURNS SETOF todo_kafka.dead_letter_replays
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
	SELECT * FROM todo_kafka.dead_letter_replays r ORDER BY r.dead_letter;
$function$;

/* the relay's poison rows, oldest first */
CREATE OR REPLACE FUNCTION todo_kafka.dlq_table_rows()
 RETURNS TABLE(id bigint, outbox_id bigint, event_id uuid, topic text, reason text, row_data json, failed_at timestamp with time zone)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
	SELECT d.id, d.outbox_id, d.event_id, d.topic, d.reason, d.row_data, d.failed_at
	  FROM todo_kafka.dead_letters d ORDER BY d.id;
$function$;

/* put a poison row back into the outbox as a new row; returns its id */
CREATE OR REPLACE FUNCTION todo_kafka.dlq_requeue_outbox(p_id bigint, p_force boolean DEFAULT false)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v_dl		todo_kafka.dead_letters;
	v_row		todo_kafka.outbox;
	v_new		bigint;
BEGIN
	SELECT * INTO v_dl FROM todo_kafka.dead_letters d WHERE d.id = p_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'dead letter db:% does not exist', p_id
			USING ERRCODE = 'no_data_found';
	END IF;
	v_row := json_populate_record(NULL::todo_kafka.outbox, v_dl.row_data);
	PERFORM todo_kafka.dlq_claim_replay('db:' || p_id, v_dl.topic, NULL, NULL,
										v_dl.event_id::text, p_force);
	INSERT INTO todo_kafka.outbox (event_id, kind, stream, event_type, source, key, user_id,
								   actor, correlation_id, traceparent, before, after, changed,
								   headers, occurred_at, db_role)
	VALUES (v_row.event_id, v_row.kind, v_row.stream, v_row.event_type, v_row.source, v_row.key,
			v_row.user_id, v_row.actor, v_row.correlation_id, v_row.traceparent, v_row.before,
			v_row.after, v_row.changed, v_row.headers,
			coalesce(v_row.occurred_at, clock_timestamp()), v_row.db_role)
	RETURNING id INTO v_new;
	RETURN v_new;
END
$function$;

/*
 * Forget dead letters older than p_older_than: delete dead_letters rows and
 * replay records, and remember where each partition of the dead-letter
 * topic now starts (p_keep_from: {"<partition>": first offset to keep},
 * computed by the tool from the messages' times).  Returns the rows deleted.
 */
CREATE OR REPLACE FUNCTION todo_kafka.dlq_purge(p_older_than interval, p_topic text DEFAULT NULL::text, p_keep_from jsonb DEFAULT '{}'::jsonb)
 RETURNS bigint
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
	v_cutoff	timestamptz;
	v_count		bigint;
	v_ids		bigint[];
BEGIN
	IF p_older_than IS NULL OR p_older_than < interval '0' THEN
		RAISE EXCEPTION 'invalid purge age: %', p_older_than
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a positive interval, e.g. ''7 days''.';
	END IF;
	v_cutoff := now() - p_older_than;
	WITH d AS (DELETE FROM todo_kafka.dead_letters d WHERE d.failed_at < v_cutoff RETURNING d.id)
	SELECT array_agg(d.id) INTO v_ids FROM d;
	v_count := coalesce(cardinality(v_ids), 0);
	DELETE FROM todo_kafka.dead_letter_replays r
	 WHERE r.dead_letter = ANY (SELECT 'db:' || i FROM unnest(v_ids) i);
	IF p_topic IS NOT NULL THEN
		INSERT INTO todo_kafka.dead_letter_purges AS p (topic, kafka_partition, keep_from_offset)
		SELECT p_topic, k.key::integer, k.value::bigint FROM jsonb_each_text(p_keep_from) k
		ON CONFLICT (topic, kafka_partition) DO UPDATE
		   SET keep_from_offset = greatest(p.keep_from_offset, EXCLUDED.keep_from_offset),
			   purged_at = clock_timestamp();
		DELETE FROM todo_kafka.dead_letter_replays r
		 USING todo_kafka.dead_letter_purges p
		 WHERE p.topic = p_topic AND r.dead_letter !~ '^db:'
		   AND split_part(r.dead_letter, ':', 1)::integer = p.kafka_partition
		   AND split_part(r.dead_letter, ':', 2)::bigint < p.keep_from_offset;
	END IF;
	PERFORM todo_kafka.record_admin_operation('dlq_purge', p_topic,
		jsonb_build_object('older_than', p_older_than::text, 'cutoff', v_cutoff,
						   'keep_from', p_keep_from, 'deleted', v_count), 'succeeded');
	RETURN v_count;
END
$function$;

/* where each partition of the dead-letter topic starts for the tool */
CREATE OR REPLACE FUNCTION todo_kafka.dlq_purged(p_topic text)
 RETURNS TABLE(kafka_partition integer, keep_from_offset bigint)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
	SELECT p.kafka_partition, p.keep_from_offset FROM todo_kafka.dead_letter_purges p
	 WHERE p.topic = p_topic ORDER BY 1;
$function$;
