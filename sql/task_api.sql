-- task API: the chatbot's tools, ownership checks and input validation
\set VERBOSITY terse
TRUNCATE todo_kafka.outbox;
CREATE TEMP TABLE ids (name text PRIMARY KEY, id uuid);

INSERT INTO ids SELECT 'milk', (todo_kafka.add_task('alice', '  Buy milk  ', 'two litres', 'high', '{home,shop}')).id;
INSERT INTO ids SELECT 'report', (todo_kafka.add_task('alice', 'Write report', p_due_date => '2030-01-02 09:00+00')).id;
INSERT INTO todo_kafka.tasks (id, user_id, title)
  VALUES ('b0b00000-0000-4000-8000-000000000001', 'bob', 'Bob''s task');
INSERT INTO ids VALUES ('bobs', 'b0b00000-0000-4000-8000-000000000001');
SELECT title, description, priority, tags, completed, due_date
  FROM todo_kafka.list_tasks('alice') ORDER BY title;

SELECT title, priority, tags
  FROM todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'milk'),
                              p_priority => 'low', p_tags => '{home}');
SELECT title, completed FROM todo_kafka.complete_task('alice', (SELECT id FROM ids WHERE name = 'milk'));
SELECT title FROM todo_kafka.list_tasks('alice', 'pending');
SELECT title FROM todo_kafka.list_tasks('alice', 'completed');
SELECT title FROM todo_kafka.get_task('alice', (SELECT id FROM ids WHERE name = 'report'));
SELECT title, due_date FROM todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'report'),
                                                   p_clear_due_date => true);
SELECT title FROM todo_kafka.delete_task('alice', (SELECT id FROM ids WHERE name = 'report'));
SELECT event_type, changed FROM todo_kafka.outbox ORDER BY id;

-- another user's task: an error, and nothing changes
SELECT count(*) AS outbox_before FROM todo_kafka.outbox \gset
SELECT todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'bobs'), p_title => 'mine');
SELECT todo_kafka.complete_task('alice', (SELECT id FROM ids WHERE name = 'bobs'));
SELECT todo_kafka.delete_task('alice', (SELECT id FROM ids WHERE name = 'bobs'));
SELECT todo_kafka.get_task('alice', (SELECT id FROM ids WHERE name = 'bobs'));
SELECT todo_kafka.get_task('alice', '00000000-0000-0000-0000-000000000000');
SELECT todo_kafka.complete_task('alice', '00000000-0000-0000-0000-000000000000');
SELECT title, completed FROM todo_kafka.tasks WHERE id = (SELECT id FROM ids WHERE name = 'bobs');
SELECT count(*) = :outbox_before AS outbox_unchanged FROM todo_kafka.outbox;
-- the SQLSTATEs a client can branch on
\set VERBOSITY sqlstate
SELECT todo_kafka.delete_task('alice', (SELECT id FROM ids WHERE name = 'bobs'));
SELECT todo_kafka.get_task('alice', '00000000-0000-0000-0000-000000000000');
SELECT todo_kafka.add_task('alice', '');
\set VERBOSITY terse

-- bad input: clear errors, nothing written
SELECT todo_kafka.add_task('alice', '');
SELECT todo_kafka.add_task('alice', '   ');
SELECT todo_kafka.add_task('alice', NULL);
SELECT todo_kafka.add_task('alice', repeat('x', 201));
SELECT todo_kafka.add_task('alice', 'ok', repeat('x', 10001));
SELECT todo_kafka.add_task('alice', 'ok', p_priority => 'urgent');
SELECT todo_kafka.add_task('alice', 'ok', p_tags => '{a,');
SELECT todo_kafka.add_task('alice', 'ok', p_tags => '{{a,b},{c,d}}');
SELECT todo_kafka.add_task('alice', 'ok', p_tags => ARRAY['a', NULL]);
SELECT todo_kafka.add_task('alice', 'ok', p_tags => '{a,""}');
SELECT todo_kafka.add_task('', 'ok');
SELECT todo_kafka.update_task('alice', (SELECT id FROM ids WHERE name = 'milk'),
                              p_title => 'new title', p_priority => 'bogus');
SELECT todo_kafka.list_tasks('alice', 'done');
SELECT title, priority FROM todo_kafka.tasks WHERE id = (SELECT id FROM ids WHERE name = 'milk');
SELECT count(*) = :outbox_before AS outbox_unchanged FROM todo_kafka.outbox;

DELETE FROM todo_kafka.tasks;
TRUNCATE todo_kafka.outbox;
