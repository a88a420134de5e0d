-- row images: the before/after json is exactly what row_to_json() gives,
-- for every kind of column (the capture trigger renders it with cached
-- per-table type information and falls back to row_to_json() itself)
\set VERBOSITY terse
TRUNCATE todo_kafka.outbox;
CREATE DOMAIN public.short_text AS text CHECK (length(VALUE) < 100);
CREATE TYPE public.mood AS ENUM ('happy', 'sad');
CREATE TABLE public.kinds (
	id int PRIMARY KEY, owner text, b bool, i2 int2, i8 int8, f4 float4, f8 float8,
	n numeric, d date, ts timestamp, tstz timestamptz, j json, jb jsonb,
	t text, vc varchar(20), u uuid, iv interval, arr int[], tarr text[][],
	dom public.short_text, bits bit(3), bytes bytea, drop_me int
);
ALTER TABLE public.kinds DROP COLUMN drop_me;
SELECT todo_kafka.track('public.kinds', 'id', 'owner');
-- a plain trigger records row_to_json() of each image, to compare with;
-- an UPDATE's before image keeps only the changed members, in column order
CREATE TABLE public.kinds_log (seq serial, image text);
CREATE FUNCTION public.kinds_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		INSERT INTO public.kinds_log (image) VALUES (row_to_json(OLD)::text);
	ELSIF TG_OP = 'UPDATE' THEN
		INSERT INTO public.kinds_log (image)
		SELECT '{' || string_agg(to_json(o.key)::text || ':' || o.value::text, ',' ORDER BY o.n) || '}'
		  FROM json_each(row_to_json(OLD)) WITH ORDINALITY AS o(key, value, n)
		  JOIN json_each(row_to_json(NEW)) AS nw(key, value) USING (key)
		 WHERE o.value::text IS DISTINCT FROM nw.value::text;
	END IF;
	IF TG_OP <> 'DELETE' THEN
		INSERT INTO public.kinds_log (image) VALUES (row_to_json(NEW)::text);
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER kinds_log AFTER INSERT OR UPDATE OR DELETE ON public.kinds
	FOR EACH ROW EXECUTE FUNCTION public.kinds_log();
INSERT INTO public.kinds VALUES
	(1, 'alice', true, -2, 9007199254740993, 'NaN', '-Infinity', 'NaN', '2030-01-02',
	 '2030-01-02 03:04:05.678', '2030-01-02 03:04:05+02', '{"a": [1, 2]}', '{"b": null}',
	 E'quote " backslash \\ tab \t newline \n unicode é', 'vc', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
	 '1 day 02:00', '{1,NULL,3}', '{{a,b},{"c\"",NULL}}', 'dom', B'101', '\x0001ff'),
	(2, NULL, NULL, NULL, NULL, 1.5, 1e300, 12.340, NULL, NULL, NULL, NULL, NULL,
	 '', NULL, NULL, NULL, '{}', NULL, NULL, NULL, NULL);
UPDATE public.kinds SET f8 = 2.5, arr = '{4}' WHERE id = 1;
DELETE FROM public.kinds WHERE id = 2;
-- a column added later shows up in later images
ALTER TABLE public.kinds ADD COLUMN added text DEFAULT 'new';
UPDATE public.kinds SET t = 'changed' WHERE id = 1;
-- every image, in order, is exactly row_to_json() of its row (UPDATE
-- before images: of its changed columns)
WITH images AS (
	SELECT row_number() OVER (ORDER BY o.id, i.n) AS seq, i.image
	  FROM todo_kafka.outbox o,
	       LATERAL (VALUES (1, o.before::text), (2, o.after::text)) AS i(n, image)
	 WHERE o.source = 'public.kinds' AND i.image IS NOT NULL)
SELECT count(*) AS images,
       count(*) FILTER (WHERE images.image = l.image) AS equal_to_row_to_json
  FROM images JOIN public.kinds_log l ON l.seq = images.seq;
SELECT after FROM todo_kafka.outbox WHERE event_type = 'created' AND key = '1';
SELECT before FROM todo_kafka.outbox WHERE event_type = 'deleted';
SELECT before, changed FROM todo_kafka.outbox WHERE event_type = 'updated' ORDER BY id;
SELECT after->>'added' AS added_column FROM todo_kafka.outbox
 WHERE source = 'public.kinds' ORDER BY id DESC LIMIT 1;

-- an enum or composite column makes the whole row fall back to row_to_json()
CREATE TYPE public.pair AS (x int, y text);
CREATE TABLE public.odd (id int PRIMARY KEY, owner text, m public.mood, p public.pair);
SELECT todo_kafka.track('public.odd', 'id', 'owner');
INSERT INTO public.odd VALUES (1, 'bob', 'sad', (7, 'seven'));
SELECT after::text = (SELECT row_to_json(x)::text FROM public.odd x) AS odd_matches, after
  FROM todo_kafka.outbox WHERE source = 'public.odd';

SELECT todo_kafka.untrack('public.kinds');
SELECT todo_kafka.untrack('public.odd');
DROP TABLE public.odd, public.kinds, public.kinds_log;
DROP FUNCTION public.kinds_log();
DROP TYPE public.pair;
DROP DOMAIN public.short_text;
DROP TYPE public.mood;
TRUNCATE todo_kafka.outbox;
