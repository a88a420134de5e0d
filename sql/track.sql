-- track / untrack: capture on an application's own table
\set VERBOSITY terse
TRUNCATE todo_kafka.outbox;
CREATE TABLE public.notes (note_id int PRIMARY KEY, owner text, body text);
SELECT todo_kafka.track('public.notes', 'note_id', 'owner');
INSERT INTO public.notes VALUES (1, 'alice', 'hello');
UPDATE public.notes SET body = 'hello again' WHERE note_id = 1;
UPDATE public.notes SET body = 'hello again' WHERE note_id = 1;
DELETE FROM public.notes WHERE note_id = 1;
SELECT kind, stream, event_type, source, key, user_id, changed,
       coalesce(after, before)->>'body' AS body
  FROM todo_kafka.outbox ORDER BY id;

-- bad calls
SELECT todo_kafka.track('public.notes', 'note_id', 'owner');
SELECT todo_kafka.track('public.no_such_table', 'id', 'owner');
CREATE TABLE public.other (id int, who text);
SELECT todo_kafka.track('public.other', 'nope', 'who');
SELECT todo_kafka.track('public.other', 'id', 'nope');
SELECT todo_kafka.track('public.other', 'id', 'who', 'no_such_stream');
-- a tracked row needs a key
SELECT todo_kafka.track('public.other', 'id', 'who');
INSERT INTO public.other VALUES (NULL, 'x');

-- a custom stream
INSERT INTO todo_kafka.topics (stream, topic) VALUES ('notes', 'app.notes');
SELECT todo_kafka.untrack('public.other');
SELECT todo_kafka.track('public.other', 'id', 'who', 'notes');
INSERT INTO public.other VALUES (7, 'dora');
SELECT stream, event_type, key FROM todo_kafka.outbox WHERE source = 'public.other';

-- untrack stops capture
TRUNCATE todo_kafka.outbox;
SELECT todo_kafka.untrack('public.notes');
INSERT INTO public.notes VALUES (2, 'alice', 'not captured');
SELECT count(*) AS rows_after_untrack FROM todo_kafka.outbox;
SELECT todo_kafka.untrack('public.notes');
SELECT todo_kafka.untrack('todo_kafka.tasks');

-- the source names the table as it is called now: after a rename of the
-- table or of its schema (the trigger caches the name per table)
CREATE SCHEMA app;
CREATE TABLE app.items (id int PRIMARY KEY, who text);
SELECT todo_kafka.track('app.items', 'id', 'who');
INSERT INTO app.items VALUES (1, 'erin');
ALTER TABLE app.items RENAME TO things;
INSERT INTO app.things VALUES (2, 'erin');
ALTER SCHEMA app RENAME TO "App Two";
INSERT INTO "App Two".things VALUES (3, 'erin');
SELECT key, source FROM todo_kafka.outbox WHERE user_id = 'erin' ORDER BY id;
SELECT todo_kafka.untrack('"App Two".things');
DROP SCHEMA "App Two" CASCADE;

SELECT todo_kafka.untrack('public.other');
DROP TABLE public.notes, public.other;
DELETE FROM todo_kafka.topics WHERE stream = 'notes';
TRUNCATE todo_kafka.outbox;
