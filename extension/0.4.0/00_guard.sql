/*
 * todo_kafka 0.3.0 -> 0.4.0: the consumer services' objects.
 *
 * This upgrade script is assembled by the Makefile from the files of
 * extension/0.4.0/ in name order (one concern per file: this guard, then
 * each service's tables and functions), into
 * extension/todo_kafka--0.3.0--0.4.0.sql.  Once 0.4.0 is released the
 * assembled script is committed and this folder frozen.
 */
\echo Use "ALTER EXTENSION todo_kafka UPDATE TO '0.4.0'" to load this file. \quit
