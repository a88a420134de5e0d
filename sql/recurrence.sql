-- recurrence: completing a recurring task creates its next occurrence
\set VERBOSITY terse
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
TRUNCATE todo_kafka.outbox;

-- the calendar arithmetic: daily, weekly, month ends, leap years, DST
SELECT due, recurrence, zone, series_day,
       n.next_due_date, to_char(n.next_due_date AT TIME ZONE coalesce(zone, 'UTC'), 'Dy YYYY-MM-DD HH24:MI') AS next_local,
       n.next_series_day
  FROM (VALUES
    ('2030-01-02 09:00+00'::timestamptz, 'daily', NULL, NULL::int),
    ('2030-12-31 23:30+00', 'daily', NULL, NULL),
    ('2028-02-28 09:00+00', 'daily', NULL, NULL),
    ('2030-01-02 09:00+00', 'weekly', NULL, NULL),
    ('2028-02-26 09:00+00', 'weekly', NULL, NULL),
    ('2030-01-15 09:00+00', 'monthly', NULL, NULL),
    ('2030-01-31 09:00+00', 'monthly', NULL, NULL),
    ('2030-02-28 09:00+00', 'monthly', NULL, 31),
    ('2030-02-28 09:00+00', 'monthly', NULL, NULL),
    ('2030-03-31 09:00+00', 'monthly', NULL, 31),
    ('2030-04-30 09:00+00', 'monthly', NULL, 31),
    ('2030-12-31 09:00+00', 'monthly', NULL, NULL),
    ('2028-01-31 09:00+00', 'monthly', NULL, NULL),
    ('2028-02-29 09:00+00', 'monthly', NULL, 31),
    ('2028-02-29 09:00+00', 'monthly', NULL, 30),
    ('2028-02-29 09:00+00', 'monthly', NULL, NULL),
    ('2030-01-30 09:00+00', 'monthly', NULL, NULL),
    -- a series day that does not fit the due date (the task was moved) is dropped
    ('2030-02-15 09:00+00', 'monthly', NULL, 31),
    -- Europe/Berlin: summer time starts 2030-03-31, ends 2030-10-27
    ('2030-03-30 08:00+00', 'daily', 'Europe/Berlin', NULL),
    ('2030-03-24 08:00+00', 'weekly', 'Europe/Berlin', NULL),
    ('2030-10-15 07:00+00', 'monthly', 'Europe/Berlin', NULL),
    -- America/New_York: daylight time starts 2030-03-10
    ('2030-03-09 14:00+00', 'daily', 'America/New_York', NULL),
    ('2030-03-05 14:00+00', 'weekly', 'America/New_York', NULL),
    -- late evening on Jan 31 in New York is already Feb 1 in UTC: the local day counts
    ('2030-02-01 04:30+00', 'monthly', 'America/New_York', NULL)
  ) AS c(due, recurrence, zone, series_day),
  LATERAL todo_kafka.next_occurrence(due, recurrence, zone, series_day) n;
SELECT todo_kafka.next_occurrence('2030-01-02 09:00+00', 'yearly');
SELECT todo_kafka.next_occurrence(NULL, 'daily');

-- completing a daily task: completed, then its reminders cancelled, then the
-- next occurrence (recurring-created) with its reminders scheduled
CREATE TEMP TABLE ids (name text PRIMARY KEY, id uuid);
SELECT todo_kafka.set_user_time_zone('alice', 'Europe/Berlin') AS time_zone;
INSERT INTO ids SELECT 'walk', (todo_kafka.add_task('alice', 'Walk the dog', 'round the park', 'high',
  '{pets}', '2030-03-30 09:00 Europe/Berlin', 'daily', '{15 minutes}', '{push}')).id;
TRUNCATE todo_kafka.outbox;
SELECT title, completed FROM todo_kafka.complete_task('alice', (SELECT id FROM ids WHERE name = 'walk'));
SELECT o.kind, o.event_type, coalesce(o.after->>'title', t.title) AS title,
       o.after->>'scheduled_time' AS scheduled_time, o.after->>'message' AS message
  FROM todo_kafka.outbox o LEFT JOIN todo_kafka.tasks t ON t.id::text = o.key
 ORDER BY o.id;
-- the next one copies the task, 09:00 Berlin time across the DST change
SELECT title, description, priority, tags, completed, recurrence, reminder_offsets,
       notification_methods, recurrence_parent = (SELECT id FROM ids WHERE name = 'walk') AS parent_ok,
       due_date, to_char(due_date AT TIME ZONE 'Europe/Berlin', 'YYYY-MM-DD HH24:MI') AS berlin_time
  FROM todo_kafka.tasks WHERE user_id = 'alice' ORDER BY due_date;
-- the recurring-created event carries the parent in its row image
SELECT after->>'recurrence_parent' = (SELECT id::text FROM ids WHERE name = 'walk') AS parent_in_event
  FROM todo_kafka.outbox WHERE event_type = 'recurring-created';
-- all in one transaction: the ids of the completed and recurring-created rows
SELECT count(DISTINCT xid) AS transactions FROM todo_kafka.outbox;
TRUNCATE todo_kafka.outbox;

-- reopening and completing again does not fork the series
SELECT completed FROM todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'walk'), p_completed => false);
SELECT completed FROM todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'walk'), p_completed => true);
SELECT count(*) AS occurrences FROM todo_kafka.tasks WHERE user_id = 'alice';
SELECT count(*) AS recurring_created FROM todo_kafka.outbox WHERE event_type = 'recurring-created';
TRUNCATE todo_kafka.outbox;

-- a monthly series from Jan 31 in a leap year keeps returning to the 31st
INSERT INTO ids SELECT 'rent', (todo_kafka.add_task('bob', 'Pay rent', p_due_date => '2028-01-31 09:00+00',
  p_recurrence => 'monthly')).id;
SELECT (todo_kafka.complete_task('bob', id)).title FROM todo_kafka.tasks WHERE user_id = 'bob' AND NOT completed;
SELECT (todo_kafka.complete_task('bob', id)).title FROM todo_kafka.tasks WHERE user_id = 'bob' AND NOT completed;
SELECT (todo_kafka.complete_task('bob', id)).title FROM todo_kafka.tasks WHERE user_id = 'bob' AND NOT completed;
SELECT (todo_kafka.complete_task('bob', id)).title FROM todo_kafka.tasks WHERE user_id = 'bob' AND NOT completed;
SELECT due_date, recurrence_day, completed FROM todo_kafka.tasks WHERE user_id = 'bob' ORDER BY due_date;
-- moving an occurrence to another day starts the series over from that day
SELECT due_date FROM todo_kafka.update_task('bob',
  (SELECT id FROM todo_kafka.tasks WHERE user_id = 'bob' AND NOT completed), p_due_date => '2028-06-15 09:00+00');
SELECT (todo_kafka.complete_task('bob', id)).title FROM todo_kafka.tasks WHERE user_id = 'bob' AND NOT completed;
SELECT due_date, recurrence_day FROM todo_kafka.tasks WHERE user_id = 'bob' AND NOT completed;
SELECT event_type, count(*) FROM todo_kafka.outbox GROUP BY 1 ORDER BY 1;
TRUNCATE todo_kafka.outbox;

-- weekly, completed through update_task, in New York across the DST change
SELECT todo_kafka.set_user_time_zone('carol', 'America/New_York') AS time_zone;
INSERT INTO ids SELECT 'gym', (todo_kafka.add_task('carol', 'Gym', p_due_date => '2030-03-05 09:00 America/New_York',
  p_recurrence => 'weekly', p_reminder_offsets => '{1 hour}', p_notification_methods => '{email,in_app}')).id;
SELECT completed FROM todo_kafka.update_task('carol', (SELECT id FROM ids WHERE name = 'gym'), p_completed => true);
SELECT due_date, to_char(due_date AT TIME ZONE 'America/New_York', 'YYYY-MM-DD HH24:MI') AS new_york_time
  FROM todo_kafka.tasks WHERE user_id = 'carol' AND NOT completed;
SELECT r.notification_method, r.scheduled_time, r.status
  FROM todo_kafka.reminders r JOIN todo_kafka.tasks t ON t.id = r.task_id
 WHERE t.user_id = 'carol' ORDER BY r.status DESC, r.scheduled_time, r.notification_method;
SELECT o.event_type, o.after->>'message' AS message FROM todo_kafka.outbox o
 WHERE o.event_type IN ('recurring-created', 'scheduled') AND o.after->>'notification_method' IS DISTINCT FROM 'in_app'
 ORDER BY o.id DESC LIMIT 2;
TRUNCATE todo_kafka.outbox;

-- deleting a recurring task ends the series: nothing is created
SELECT count(*) AS carol_tasks FROM todo_kafka.tasks WHERE user_id = 'carol';
SELECT (todo_kafka.delete_task('carol', id)).title FROM todo_kafka.tasks WHERE user_id = 'carol' AND NOT completed;
SELECT count(*) AS carol_tasks FROM todo_kafka.tasks WHERE user_id = 'carol';
SELECT kind, event_type FROM todo_kafka.outbox ORDER BY id;
TRUNCATE todo_kafka.outbox;

-- no recurrence (or recurrence switched off): completing creates nothing
INSERT INTO ids SELECT 'once', (todo_kafka.add_task('dave', 'Once', p_due_date => '2030-01-02 09:00+00')).id;
INSERT INTO ids SELECT 'stop', (todo_kafka.add_task('dave', 'Stopped', p_due_date => '2030-01-02 09:00+00',
  p_recurrence => 'daily')).id;
SELECT recurrence FROM todo_kafka.update_task('dave', (SELECT id FROM ids WHERE name = 'stop'), p_recurrence => 'none');
SELECT (todo_kafka.complete_task('dave', id)).title FROM todo_kafka.tasks WHERE user_id = 'dave' ORDER BY title;
SELECT count(*) AS dave_tasks FROM todo_kafka.tasks WHERE user_id = 'dave';
TRUNCATE todo_kafka.outbox;

-- bad input: clear errors, nothing written
SELECT count(*) AS tasks_before FROM todo_kafka.tasks \gset
SELECT todo_kafka.add_task('erin', 'x', p_due_date => '2030-01-02 09:00+00', p_recurrence => 'yearly');
-- NULL means the default, as for the other arguments
SELECT (todo_kafka.add_task('erin', 'Null recurrence', p_due_date => '2030-01-02 09:00+00', p_recurrence => NULL)).recurrence;
SELECT todo_kafka.add_task('erin', 'x', p_recurrence => 'daily');
SELECT todo_kafka.update_task('dave', (SELECT id FROM ids WHERE name = 'once'), p_recurrence => 'hourly');
INSERT INTO ids SELECT 'daily', (todo_kafka.add_task('erin', 'Daily', p_due_date => '2030-01-02 09:00+00',
  p_recurrence => 'daily')).id;
SELECT todo_kafka.update_task('erin', (SELECT id FROM ids WHERE name = 'daily'), p_clear_due_date => true);
SELECT due_date, recurrence FROM todo_kafka.update_task('erin', (SELECT id FROM ids WHERE name = 'daily'),
  p_clear_due_date => true, p_recurrence => 'none');
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT todo_kafka.add_task('erin', 'x', p_due_date => '2030-01-02 09:00+00', p_recurrence => 'yearly');
SELECT todo_kafka.add_task('erin', 'x', p_recurrence => 'daily');
\set VERBOSITY sqlstate
SELECT todo_kafka.add_task('erin', 'x', p_recurrence => 'daily');
\set VERBOSITY terse
\set SHOW_CONTEXT errors
INSERT INTO todo_kafka.tasks (user_id, title, recurrence) VALUES ('erin', 'x', 'daily');
SELECT count(*) - :tasks_before AS tasks_added FROM todo_kafka.tasks;
SELECT kind, event_type FROM todo_kafka.outbox ORDER BY id;

DELETE FROM todo_kafka.tasks;
DELETE FROM todo_kafka.user_settings;
TRUNCATE todo_kafka.outbox;
