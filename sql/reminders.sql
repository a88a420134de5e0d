-- reminders: scheduled, rescheduled and cancelled with their tasks, fired once
\set VERBOSITY terse
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
TRUNCATE todo_kafka.outbox;
CREATE TEMP TABLE ids (name text PRIMARY KEY, id uuid);
-- the reminder events in outbox order, and the reminders of each task
CREATE TEMP VIEW ev AS
  SELECT o.event_type, t.title, o.after->>'notification_method' AS method,
         o.after->>'scheduled_time' AS scheduled_time, o.after->>'message' AS message
    FROM todo_kafka.outbox o LEFT JOIN todo_kafka.tasks t ON t.id::text = o.key
   WHERE o.kind = 'reminder' ORDER BY o.id;
CREATE TEMP VIEW rem AS
  SELECT t.title, r."offset", r.notification_method AS method, r.scheduled_time, r.status
    FROM todo_kafka.reminders r JOIN todo_kafka.tasks t ON t.id = r.task_id
   ORDER BY t.title, r.status DESC, r.scheduled_time, r.notification_method;

-- a task with a due date and offsets: one reminder per (offset, method)
INSERT INTO ids SELECT 'milk', (todo_kafka.add_task('alice', 'Buy milk', p_due_date => '2030-01-02 09:00+00',
  p_reminder_offsets => '{1 day,15 minutes}', p_notification_methods => '{email,push}')).id;
SELECT * FROM rem;
SELECT event_type, method, scheduled_time, message FROM ev;
-- the outbox rows: kind, stream, key (the task id), user and source
SELECT DISTINCT kind, stream, key = (SELECT id::text FROM ids WHERE name = 'milk') AS key_is_task,
       user_id, source
  FROM todo_kafka.outbox WHERE kind = 'reminder';
-- the data is the reminders schema, exactly these fields
SELECT DISTINCT array_agg(k ORDER BY k) AS fields
  FROM todo_kafka.outbox o, json_object_keys(o.after) k
 WHERE o.kind = 'reminder' GROUP BY o.id;
SELECT count(*) AS events,
       count(*) FILTER (WHERE (after->>'reminder_id')::uuid IN (SELECT reminder_id FROM todo_kafka.reminders)) AS known_reminder,
       count(*) FILTER (WHERE after->>'task_id' = key) AS task_id_is_key,
       count(*) FILTER (WHERE after->>'user_id' = 'alice') AS user_alice,
       count(*) FILTER (WHERE after->>'event_type' = event_type) AS event_type_matches,
       count(*) FILTER (WHERE after->>'correlation_id' = correlation_id) AS correlation_matches,
       count(*) FILTER (WHERE after->>'timestamp' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$') AS iso_timestamp
  FROM todo_kafka.outbox WHERE kind = 'reminder';
-- the task event comes first
SELECT kind, event_type FROM todo_kafka.outbox ORDER BY id LIMIT 2;
TRUNCATE todo_kafka.outbox;

-- the correlation id of the transaction is carried in the data
BEGIN;
SET LOCAL todo_kafka.correlation_id = 'conv-7';
SELECT (todo_kafka.add_task('alice', 'Call mum', p_due_date => '2030-03-01 18:00+00',
        p_reminder_offsets => '{0}')).title;
COMMIT;
SELECT event_type, method, after->>'correlation_id' AS correlation_id
  FROM todo_kafka.outbox o, LATERAL (SELECT o.after->>'notification_method' AS method) m
 WHERE kind = 'reminder';
TRUNCATE todo_kafka.outbox;

-- no due date or no offsets: no reminders and no reminder events
SELECT (todo_kafka.add_task('alice', 'No due date')).title;
SELECT (todo_kafka.add_task('alice', 'No offsets', p_due_date => '2030-01-05 09:00+00')).title;
SELECT count(*) AS reminder_events FROM todo_kafka.outbox WHERE kind = 'reminder';
SELECT count(*) AS reminders FROM todo_kafka.reminders r JOIN todo_kafka.tasks t ON t.id = r.task_id
 WHERE t.title LIKE 'No %';
TRUNCATE todo_kafka.outbox;

-- the user's time zone: the message shows the due time there
SELECT todo_kafka.set_user_time_zone('alice', 'europe/berlin') AS time_zone;
INSERT INTO ids SELECT 'summer', (todo_kafka.add_task('alice', 'Summer party', p_due_date => '2030-07-01 16:00+00',
  p_reminder_offsets => '{2 hours}')).id;
SELECT event_type, title, method, scheduled_time, message FROM ev;
TRUNCATE todo_kafka.outbox;

-- rescheduling: a new due date cancels the pending ones and schedules new ones
SELECT title FROM todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'milk'),
                                         p_due_date => '2030-01-03 09:00+00');
SELECT event_type, method, scheduled_time, message FROM ev;
SELECT * FROM rem WHERE title = 'Buy milk';
TRUNCATE todo_kafka.outbox;
-- dropping a method cancels only its reminders; adding an offset schedules only it
SELECT title FROM todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'milk'),
                                         p_notification_methods => '{email}');
SELECT title FROM todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'milk'),
                                         p_reminder_offsets => '{1 day,15 minutes,1 hour}');
SELECT event_type, method, scheduled_time FROM ev;
TRUNCATE todo_kafka.outbox;
-- a change that does not touch the schedule leaves the reminders alone
SELECT title FROM todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'milk'),
                                         p_title => 'Buy oat milk', p_priority => 'high');
SELECT title FROM todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'milk'),
                                         p_reminder_offsets => '{15 minutes,1 hour,1 day,1 hour}');
SELECT count(*) AS reminder_events FROM todo_kafka.outbox WHERE kind = 'reminder';
SELECT * FROM rem WHERE title = 'Buy oat milk' AND status = 'scheduled';
TRUNCATE todo_kafka.outbox;

-- completing cancels the pending ones; reopening schedules them again
SELECT title, completed FROM todo_kafka.complete_task('alice', (SELECT id FROM ids WHERE name = 'milk'));
SELECT event_type, method, scheduled_time, message FROM ev;
SELECT title, completed FROM todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'milk'),
                                                    p_completed => false);
SELECT event_type, method, scheduled_time FROM ev;
TRUNCATE todo_kafka.outbox;
-- removing the offsets cancels them; a cleared due date needs them gone too
SELECT title, due_date FROM todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'milk'),
                                                   p_clear_due_date => true, p_reminder_offsets => '{}');
SELECT event_type, method, scheduled_time FROM ev;
SELECT status, count(*) FROM todo_kafka.reminders
 WHERE task_id = (SELECT id FROM ids WHERE name = 'milk') GROUP BY status ORDER BY status;
TRUNCATE todo_kafka.outbox;

-- deleting cancels the pending ones, then the reminders go with the task
SELECT title FROM todo_kafka.delete_task('alice', (SELECT id FROM ids WHERE name = 'summer'));
SELECT o.kind, o.event_type, o.after->>'message' AS message FROM todo_kafka.outbox o ORDER BY id;
SELECT count(*) AS reminders_left FROM todo_kafka.reminders
 WHERE task_id = (SELECT id FROM ids WHERE name = 'summer');
TRUNCATE todo_kafka.outbox;

-- firing: past due within the grace period is sent, later is missed
SELECT todo_kafka.set_user_time_zone('alice', NULL) AS time_zone;
DELETE FROM todo_kafka.tasks;
TRUNCATE todo_kafka.outbox;
INSERT INTO todo_kafka.tasks (user_id, title, due_date, reminder_offsets)
  VALUES ('bob', 'Long ago', '2020-01-01 09:00+00', '{0}'),
         ('bob', 'Just now', now() + interval '1 minute', '{2 minutes}'),
         ('bob', 'Later', '2030-06-01 12:00+00', '{1 day}');
TRUNCATE todo_kafka.outbox;
SELECT todo_kafka.fire_due_reminders() AS next_due;
SELECT t.title, r.status, r.fired_at IS NOT NULL AS fired
  FROM todo_kafka.reminders r JOIN todo_kafka.tasks t ON t.id = r.task_id ORDER BY t.title;
SELECT o.event_type, o.after->>'event_type' AS data_event_type, t.title,
       o.after->>'scheduled_time' = to_char(r.scheduled_time AT TIME ZONE 'UTC',
                                            'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS scheduled_time_ok,
       o.actor = current_user AS actor_is_caller
  FROM todo_kafka.outbox o
  JOIN todo_kafka.reminders r ON r.reminder_id = (o.after->>'reminder_id')::uuid
  JOIN todo_kafka.tasks t ON t.id = r.task_id
 ORDER BY o.id;
SELECT o.after->>'message' AS message FROM todo_kafka.outbox o WHERE o.event_type = 'missed';
-- firing again fires nothing
SELECT todo_kafka.fire_due_reminders() AS next_due;
SELECT count(*) AS events FROM todo_kafka.outbox;
TRUNCATE todo_kafka.outbox;

-- the grace period, max_rows, and the message rendered at firing time
UPDATE todo_kafka.tasks SET title = 'Later (renamed)' WHERE title = 'Later';
UPDATE todo_kafka.reminders SET scheduled_time = now() - interval '1 hour' WHERE status = 'scheduled';
INSERT INTO todo_kafka.tasks (user_id, title, due_date, reminder_offsets)
  VALUES ('bob', 'Past one', '2021-01-01 09:00+00', '{0}'),
         ('bob', 'Past two', '2022-01-01 09:00+00', '{0}');
TRUNCATE todo_kafka.outbox;
SELECT todo_kafka.fire_due_reminders(max_rows => 2) <= now() AS more_due;
SELECT todo_kafka.fire_due_reminders(grace => '10 years', max_rows => 2) AS next_due;
SELECT o.event_type, o.after->>'message' AS message FROM todo_kafka.outbox o ORDER BY id;
-- bad arguments
SELECT todo_kafka.fire_due_reminders(grace => '-1 minute');
SELECT todo_kafka.fire_due_reminders(grace => NULL);
SELECT todo_kafka.fire_due_reminders(max_rows => 0);
DELETE FROM todo_kafka.tasks;
TRUNCATE todo_kafka.outbox;

-- time zones: validated, canonical, NULL forgets
SELECT todo_kafka.set_user_time_zone('carol', 'America/New_York') AS time_zone;
SELECT todo_kafka.set_user_time_zone('carol', 'UTC') AS time_zone;
SELECT todo_kafka.set_user_time_zone('carol', 'Mars/Olympus_Mons');
SELECT todo_kafka.set_user_time_zone('carol', 'UTC+3');
SELECT todo_kafka.set_user_time_zone('carol', '');
SELECT todo_kafka.set_user_time_zone(NULL, 'UTC');
SELECT user_id, time_zone FROM todo_kafka.user_settings ORDER BY 1;
SELECT todo_kafka.set_user_time_zone('carol', NULL) AS time_zone;
SELECT count(*) AS settings FROM todo_kafka.user_settings;

-- bad input: clear errors, nothing written
SELECT count(*) AS tasks_before FROM todo_kafka.tasks \gset
SELECT todo_kafka.add_task('alice', 'x', p_due_date => '2030-01-02 09:00+00', p_reminder_offsets => '{-1 hour}');
SELECT todo_kafka.add_task('alice', 'x', p_due_date => '2030-01-02 09:00+00', p_reminder_offsets => '{1 day,-1 day}');
SELECT todo_kafka.add_task('alice', 'x', p_due_date => '2030-01-02 09:00+00', p_reminder_offsets => '{366 days}');
SELECT todo_kafka.add_task('alice', 'x', p_due_date => '2030-01-02 09:00+00', p_reminder_offsets => '{2 years}');
SELECT todo_kafka.add_task('alice', 'x', p_due_date => '2030-01-02 09:00+00',
  p_reminder_offsets => (SELECT array_agg(make_interval(mins => g)) FROM generate_series(1, 11) g));
SELECT todo_kafka.add_task('alice', 'x', p_due_date => '2030-01-02 09:00+00', p_reminder_offsets => ARRAY[NULL::interval]);
SELECT todo_kafka.add_task('alice', 'x', p_due_date => '2030-01-02 09:00+00', p_reminder_offsets => '{{1 day},{2 days}}');
SELECT todo_kafka.add_task('alice', 'x', p_due_date => '2030-01-02 09:00+00', p_reminder_offsets => '{1 day}',
  p_notification_methods => '{email,sms}');
SELECT todo_kafka.add_task('alice', 'x', p_due_date => '2030-01-02 09:00+00', p_reminder_offsets => '{1 day}',
  p_notification_methods => '{}');
SELECT todo_kafka.add_task('alice', 'x', p_reminder_offsets => '{1 day}');
INSERT INTO ids SELECT 'report', (todo_kafka.add_task('alice', 'Report', p_due_date => '2030-01-02 09:00+00',
  p_reminder_offsets => '{1 day}')).id;
TRUNCATE todo_kafka.outbox;
SELECT todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'report'), p_clear_due_date => true);
SELECT todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'report'), p_reminder_offsets => '{400 days}');
SELECT todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'report'),
  p_title => 'Changed', p_notification_methods => '{pager}');
-- each error says how to fix it, with an SQLSTATE a client can branch on
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT todo_kafka.add_task('alice', 'x', p_reminder_offsets => '{1 day}');
SELECT todo_kafka.add_task('alice', 'x', p_due_date => '2030-01-02 09:00+00', p_reminder_offsets => '{-15 minutes}');
SELECT todo_kafka.add_task('alice', 'x', p_due_date => '2030-01-02 09:00+00', p_reminder_offsets => '{400 days}');
SELECT todo_kafka.add_task('alice', 'x', p_due_date => '2030-01-02 09:00+00', p_notification_methods => '{sms}');
SELECT todo_kafka.set_user_time_zone('carol', 'Mars/Olympus_Mons');
\set VERBOSITY sqlstate
SELECT todo_kafka.add_task('alice', 'x', p_reminder_offsets => '{1 day}');
SELECT todo_kafka.add_task('alice', 'x', p_due_date => '2030-01-02 09:00+00', p_reminder_offsets => ARRAY[NULL::interval]);
\set VERBOSITY terse
\set SHOW_CONTEXT errors
SELECT title, due_date, reminder_offsets, notification_methods FROM todo_kafka.tasks;
SELECT count(*) AS outbox_rows FROM todo_kafka.outbox;
-- direct writes are held to the same limits
INSERT INTO todo_kafka.tasks (user_id, title, reminder_offsets) VALUES ('alice', 'x', '{1 day}');
INSERT INTO todo_kafka.tasks (user_id, title, due_date, reminder_offsets)
  VALUES ('alice', 'x', '2030-01-02 09:00+00', '{-1 day}');
INSERT INTO todo_kafka.tasks (user_id, title, due_date, notification_methods)
  VALUES ('alice', 'x', '2030-01-02 09:00+00', '{sms}');
SELECT count(*) = :tasks_before + 1 AS only_report_added FROM todo_kafka.tasks;

-- who may do what
CREATE ROLE tk_rem_app IN ROLE todo_kafka_app;
CREATE ROLE tk_rem_relay IN ROLE todo_kafka_relay;
SET ROLE tk_rem_app;
SELECT todo_kafka.set_user_time_zone('alice', 'Asia/Tokyo') AS time_zone;
SELECT (todo_kafka.add_task('alice', 'As app', p_due_date => '2030-01-02 09:00+00',
        p_reminder_offsets => '{1 hour}', p_recurrence => 'daily')).recurrence;
SELECT todo_kafka.fire_due_reminders();
SELECT count(*) FROM todo_kafka.reminders;
SELECT todo_kafka.emit('reminder', 'reminders', 'k', 'sent', 'alice', '{}', 'forged');
RESET ROLE;
SET ROLE tk_rem_relay;
SELECT todo_kafka.fire_due_reminders() AS next_due;
SELECT todo_kafka.set_user_time_zone('alice', 'UTC');
UPDATE todo_kafka.reminders SET status = 'sent';
RESET ROLE;
SELECT event_type, title, method, scheduled_time, message FROM ev;

DELETE FROM todo_kafka.tasks;
DELETE FROM todo_kafka.user_settings;
TRUNCATE todo_kafka.outbox;
DROP ROLE tk_rem_app, tk_rem_relay;
