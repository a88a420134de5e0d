-- message contracts (extension 0.4.0): a message says the same thing the
-- same way whatever the writing session's settings; the actor of a task API
-- call is its user; a fired reminder carries the correlation id of the
-- transaction that scheduled it.  (publish() refusing the built-in streams:
-- publish.sql; partitionkey and dataschema: the relay's unit tests and
-- tests/101_messages.pl, tests/111_schemas.pl.)
\set VERBOSITY terse
TRUNCATE todo_kafka.outbox;
SET TimeZone = 'America/New_York';
SET IntervalStyle = 'sql_standard';
SET DateStyle = 'SQL, DMY';

-- times in UTC with "Z" and six fraction digits, offsets as ISO 8601
-- durations, from a New York session with SQL-standard intervals
SELECT id AS t1 FROM todo_kafka.add_task('alice', 'Water plants', p_tags => '{home}',
  p_due_date => '2030-01-02 09:00:00.5+01',
  p_reminder_offsets => '{1 day, 15 minutes, 0, 1 day 02:30:00.25}',
  p_notification_methods => '{email}') \gset
SELECT after->>'due_date' AS due_date, after->'reminder_offsets' AS reminder_offsets,
       after->>'created_at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$' AS created_at_utc,
       after->>'updated_at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$' AS updated_at_utc
  FROM todo_kafka.outbox WHERE event_type = 'created';
SELECT after->>'scheduled_time' AS scheduled_time,
       after->>'timestamp' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$' AS timestamp_utc
  FROM todo_kafka.outbox WHERE kind = 'reminder' ORDER BY id;

-- the same task changed from Kolkata with verbose intervals: the same
-- spelling of the same instants and offsets (one created_at, one way)
SET TimeZone = 'Asia/Kolkata';
SET IntervalStyle = 'postgres_verbose';
SELECT (todo_kafka.update_task('alice', :'t1', p_due_date => '2030-01-03 09:00+01',
  p_reminder_offsets => '{2 hours}')).title;
SELECT before->>'due_date' AS before_due_date, after->>'due_date' AS after_due_date,
       before->'reminder_offsets' AS before_offsets, after->'reminder_offsets' AS after_offsets
  FROM todo_kafka.outbox WHERE event_type = 'updated';
SELECT count(DISTINCT after->>'created_at') AS created_at_spellings,
       count(*) AS task_images
  FROM todo_kafka.outbox WHERE kind = 'change';
SELECT after->>'event_type' AS event_type, after->>'scheduled_time' AS scheduled_time
  FROM todo_kafka.outbox WHERE kind = 'reminder' AND event_type = 'scheduled' ORDER BY id DESC LIMIT 1;
SET TimeZone = 'UTC';
RESET IntervalStyle;
RESET DateStyle;
DELETE FROM todo_kafka.tasks;
TRUNCATE todo_kafka.outbox;

-- the actor: the user a task API call was made for; plain SQL on the table
-- keeps the role, even right after an API call in the same transaction;
-- todo_kafka.actor, when set, wins; db_role is always the role
SELECT id AS t2 FROM todo_kafka.add_task('bob', 'by the API', p_due_date => '2030-01-02 09:00+00',
  p_recurrence => 'daily', p_reminder_offsets => '{1 hour}') \gset
SELECT current_setting('todo_kafka.api_user') AS api_user_after_the_call;
UPDATE todo_kafka.tasks SET description = 'plain SQL' WHERE id = :'t2';
BEGIN;
SELECT (todo_kafka.complete_task('bob', :'t2')).completed;
UPDATE todo_kafka.tasks SET description = 'plain SQL, same transaction' WHERE id = :'t2';
COMMIT;
SET todo_kafka.actor = 'chatbot';
SELECT (todo_kafka.delete_task('bob', :'t2')).title;
RESET todo_kafka.actor;
-- a failed call, its error caught, leaves no API user behind
BEGIN;
DO $$
BEGIN
	PERFORM todo_kafka.complete_task('mallory', (SELECT id FROM todo_kafka.tasks LIMIT 1));
EXCEPTION WHEN insufficient_privilege THEN
	RAISE NOTICE 'refused (%)', SQLSTATE;
END
$$;
UPDATE todo_kafka.tasks SET description = 'plain SQL after a failed call';
COMMIT;
SELECT kind, event_type, coalesce(after, before)->>'description' AS description,
       CASE WHEN actor = session_user THEN '(role)' ELSE actor END AS actor,
       db_role = session_user AS db_role_is_role
  FROM todo_kafka.outbox ORDER BY id;
DELETE FROM todo_kafka.tasks;
TRUNCATE todo_kafka.outbox;

-- a fired reminder carries the correlation id of the transaction that
-- scheduled it; one scheduled before 0.4.0 (no correlation id kept) gets
-- the firing transaction's own
BEGIN;
SET LOCAL todo_kafka.correlation_id = 'conv-42';
SELECT id AS t3 FROM todo_kafka.add_task('carol', 'Past due', p_due_date => now() - interval '1 minute',
  p_reminder_offsets => '{0, 30 seconds}', p_notification_methods => '{push}') \gset
COMMIT;
SELECT "offset", correlation_id FROM todo_kafka.reminders WHERE task_id = :'t3' ORDER BY "offset";
UPDATE todo_kafka.reminders SET correlation_id = NULL WHERE task_id = :'t3' AND "offset" = '30 seconds';
SELECT count(*) AS calls FROM (SELECT todo_kafka.fire_due_reminders('1 hour')) AS f;
SELECT r."offset", o.event_type,
       CASE WHEN o.correlation_id = 'conv-42' THEN 'conv-42'
            WHEN o.correlation_id = (SELECT correlation_id FROM todo_kafka.outbox o2
                                      WHERE o2.kind = 'reminder' AND o2.event_type = 'sent'
                                        AND o2.xid = o.xid AND o2.correlation_id <> 'conv-42' LIMIT 1)
                 AND o.correlation_id ~ '^[0-9a-f-]{36}$' THEN 'the firing transaction''s'
       END AS correlation_id,
       o.after->>'correlation_id' = o.correlation_id AS data_agrees
  FROM todo_kafka.outbox o JOIN todo_kafka.reminders r ON r.reminder_id = (o.after->>'reminder_id')::uuid
 WHERE o.kind = 'reminder' AND o.event_type IN ('sent', 'missed')
 ORDER BY r."offset";
-- the firing call leaves the session's correlation id alone
SELECT current_setting('todo_kafka.correlation_id') AS correlation_id_after;
DELETE FROM todo_kafka.tasks;
TRUNCATE todo_kafka.outbox;
RESET TimeZone;
