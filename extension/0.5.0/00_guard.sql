/*
 * todo_kafka 0.4.0 -> 0.5.0: the rotating outbox (issue 11).
 *
 * This upgrade script is assembled by the Makefile from the files of
 * extension/0.5.0/ in name order (one concern per file), into
 * extension/todo_kafka--0.4.0--0.5.0.sql.  Once 0.5.0 is released the
 * assembled script is committed and this folder removed, as 0.4.0's was.
 */
\echo Use "ALTER EXTENSION todo_kafka UPDATE TO '0.5.0'" to load this file. \quit
