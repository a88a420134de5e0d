-- row images: the before/after json is what row_to_json() gives, for every
-- kind of column, except that timestamptz is in UTC with "Z" and six
-- fraction digits and interval an ISO 8601 duration, in scalars and arrays,
-- whatever the session's TimeZone and IntervalStyle (the message contract).
-- The capture trigger renders it with cached per-table type information and
-- uses row_to_json() of a one-column row for the columns it cannot classify.
\set VERBOSITY terse
TRUNCATE todo_kafka.outbox;
SET TimeZone = 'America/New_York';
SET IntervalStyle = 'sql_standard';
CREATE DOMAIN public.short_text AS text CHECK (length(VALUE) < 100);
CREATE TYPE public.mood AS ENUM ('happy', 'sad');
CREATE TABLE public.kinds (
	id int PRIMARY KEY, owner text, b bool, i2 int2, i8 int8, f4 float4, f8 float8,
	n numeric, d date, ts timestamp, tstz timestamptz, j json, jb jsonb,
	t text, vc varchar(20), u uuid, iv interval, arr int[], tarr text[][],
	dom public.short_text, bits bit(3), bytes bytea, drop_me int,
	tstzarr timestamptz[], ivarr interval[][]
);
ALTER TABLE public.kinds DROP COLUMN drop_me;
SELECT todo_kafka.track('public.kinds', 'id', 'owner');
-- the expected image: row_to_json() with IntervalStyle iso_8601, then each
-- timestamptz value (scalar or array element) rewritten by to_char() in UTC
CREATE FUNCTION public.utc(v json) RETURNS json LANGUAGE sql AS $$
	SELECT CASE json_typeof(v)
		WHEN 'string' THEN CASE WHEN v #>> '{}' IN ('infinity', '-infinity') THEN v
							   ELSE to_json(to_char((v #>> '{}')::timestamptz AT TIME ZONE 'UTC',
													'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')) END
		WHEN 'array' THEN (SELECT ('[' || coalesce(string_agg(public.utc(e)::text, ',' ORDER BY n), '') || ']')::json
							 FROM json_array_elements(v) WITH ORDINALITY AS a(e, n))
		ELSE v END
$$;
CREATE FUNCTION public.expected_image(j json, rel regclass) RETURNS text LANGUAGE sql AS $$
	SELECT '{' || string_agg(to_json(e.key)::text || ':' ||
			   CASE WHEN a.atttypid IN ('timestamptz'::regtype, 'timestamptz[]'::regtype)
					THEN public.utc(e.value)::text ELSE e.value::text END, ',' ORDER BY e.n) || '}'
	  FROM json_each(j) WITH ORDINALITY AS e(key, value, n)
	  JOIN pg_attribute a ON a.attrelid = rel AND a.attname = e.key
$$;
-- a plain trigger records the expected image of each change, to compare
-- with; an UPDATE's before image keeps only the changed members, in column
-- order
CREATE TABLE public.kinds_log (seq serial, image text);
CREATE FUNCTION public.kinds_log() RETURNS trigger LANGUAGE plpgsql
	SET IntervalStyle = 'iso_8601'
AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		INSERT INTO public.kinds_log (image) VALUES (public.expected_image(row_to_json(OLD), TG_RELID));
	ELSIF TG_OP = 'UPDATE' THEN
		INSERT INTO public.kinds_log (image)
		SELECT public.expected_image(('{' || string_agg(to_json(o.key)::text || ':' || o.value::text, ','
											  ORDER BY o.n) || '}')::json, TG_RELID)
		  FROM json_each(row_to_json(OLD)) WITH ORDINALITY AS o(key, value, n)
		  JOIN json_each(row_to_json(NEW)) AS nw(key, value) USING (key)
		 WHERE o.value::text IS DISTINCT FROM nw.value::text;
	END IF;
	IF TG_OP <> 'DELETE' THEN
		INSERT INTO public.kinds_log (image) VALUES (public.expected_image(row_to_json(NEW), TG_RELID));
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER kinds_log AFTER INSERT OR UPDATE OR DELETE ON public.kinds
	FOR EACH ROW EXECUTE FUNCTION public.kinds_log();
INSERT INTO public.kinds VALUES
	(1, 'alice', true, -2, 9007199254740993, 'NaN', '-Infinity', 'NaN', '2030-01-02',
	 '2030-01-02 03:04:05.678', '2030-01-02 03:04:05+02', '{"a": [1, 2]}', '{"b": null}',
	 E'quote " backslash \\ tab \t newline \n unicode é', 'vc', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
	 '1 day 02:00', '{1,NULL,3}', '{{a,b},{"c\"",NULL}}', 'dom', B'101', '\x0001ff',
	 '{"2030-01-02 03:04:05.5+02",NULL,infinity}', '{{1 day,15 minutes},{0,NULL}}'),
	(2, NULL, NULL, NULL, NULL, 1.5, 1e300, 12.340, NULL, NULL, NULL, NULL, NULL,
	 '', NULL, NULL, NULL, '{}', NULL, NULL, NULL, NULL, '{}', '{}');
UPDATE public.kinds SET f8 = 2.5, arr = '{4}' WHERE id = 1;
DELETE FROM public.kinds WHERE id = 2;
-- a column added later shows up in later images
ALTER TABLE public.kinds ADD COLUMN added text DEFAULT 'new';
UPDATE public.kinds SET t = 'changed' WHERE id = 1;
-- every image, in order, is exactly the expected one (UPDATE before
-- images: of its changed columns)
WITH images AS (
	SELECT row_number() OVER (ORDER BY o.id, i.n) AS seq, i.image
	  FROM todo_kafka.outbox o,
	       LATERAL (VALUES (1, o.before::text), (2, o.after::text)) AS i(n, image)
	 WHERE o.source = 'public.kinds' AND i.image IS NOT NULL)
SELECT count(*) AS images,
       count(*) FILTER (WHERE images.image = l.image) AS as_expected
  FROM images JOIN public.kinds_log l ON l.seq = images.seq;
SELECT after FROM todo_kafka.outbox WHERE event_type = 'created' AND key = '1';
SELECT before FROM todo_kafka.outbox WHERE event_type = 'deleted';
SELECT before, changed FROM todo_kafka.outbox WHERE event_type = 'updated' ORDER BY id;
SELECT after->>'added' AS added_column FROM todo_kafka.outbox
 WHERE source = 'public.kinds' ORDER BY id DESC LIMIT 1;

-- the same text whatever the writing session's settings
SET TimeZone = 'Asia/Kolkata';
SET IntervalStyle = 'postgres_verbose';
SELECT after FROM todo_kafka.outbox WHERE event_type = 'created' AND key = '1';
UPDATE public.kinds SET tstz = tstz + interval '1 hour', iv = '15 minutes' WHERE id = 1;
SELECT before, after->'tstz' AS tstz, after->'iv' AS iv FROM todo_kafka.outbox ORDER BY id DESC LIMIT 1;
SET TimeZone = 'America/New_York';
SET IntervalStyle = 'sql_standard';

-- an enum or composite column is rendered by row_to_json() of a one-column
-- row (a timestamptz inside a composite value therefore follows TimeZone);
-- the row's other columns keep the contract
CREATE TYPE public.pair AS (x int, y text);
CREATE TABLE public.odd (id int PRIMARY KEY, owner text, m public.mood, p public.pair,
						 at timestamptz, ms public.mood[]);
SELECT todo_kafka.track('public.odd', 'id', 'owner');
INSERT INTO public.odd VALUES (1, 'bob', 'sad', (7, 'seven'), '2030-01-02 09:00+01', '{happy,NULL}');
SELECT after::text = (SELECT public.expected_image(row_to_json(x), 'public.odd') FROM public.odd x) AS odd_matches, after
  FROM todo_kafka.outbox WHERE source = 'public.odd';
UPDATE public.odd SET m = 'happy', p = NULL;
SELECT before, changed FROM todo_kafka.outbox WHERE source = 'public.odd' AND event_type = 'updated';

SELECT todo_kafka.untrack('public.kinds');
SELECT todo_kafka.untrack('public.odd');
DROP TABLE public.odd, public.kinds, public.kinds_log;
DROP FUNCTION public.kinds_log();
DROP FUNCTION public.expected_image(json, regclass);
DROP FUNCTION public.utc(json);
DROP TYPE public.pair;
DROP DOMAIN public.short_text;
DROP TYPE public.mood;
TRUNCATE todo_kafka.outbox;
RESET TimeZone;
RESET IntervalStyle;
