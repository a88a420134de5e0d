/*-------------------------------------------------------------------------
 *
 * dlq_replay.c
 *	  todo-kafka-dlq: replay one dead letter, once
 *
 * A message of the dead-letter topic: in one database transaction,
 * todo_kafka.dlq_claim_replay() records it (refused when it was replayed
 * before, unless --force), the original key and value are produced to the
 * original topic AND partition (so the key's order is kept) by an
 * idempotent acks=all producer, and the transaction commits only after
 * Kafka acknowledged; a message Kafka did not take leaves no record.  The
 * replayed message carries the original message's headers as the envelope
 * kept them (data.headers, in order: correlation-id, traceparent and any
 * other the producer set), except the dlq-* ones (a dead letter's own
 * bookkeeping, e.g. the dlq-replayed-from of an earlier replay), plus
 * dlq-replayed-from = the dead letter's name.  A dead letter written
 * before the envelope kept headers gets content-type, event-id and
 * event-type rebuilt from what it has.
 *
 * A table row ("db:N") goes back into the outbox
 * (todo_kafka.dlq_requeue_outbox, which records it the same way) and the
 * relay publishes it.  A relay notice on the topic has no value and is
 * refused with a pointer to its table row.
 *
 * The producer is created on the first replay and shared by the rest
 * (the caller flushes and destroys it).  produce_acked() waits for the
 * delivery report by polling on this thread, so dr_cb runs here too;
 * message.timeout.ms (30 s) bounds the wait.  Refusals are printed to
 * stderr as the database worded them.
 *
 * IDENTIFICATION
 *	  tools/dlq/dlq_replay.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>

#include "dlq_int.h"
#include "kafka_conf.h"

typedef struct dr_state
{
	volatile bool done;
	rd_kafka_resp_err_t err;
} dr_state;

static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	dr_state   *s = m->_private;

	s->err = m->err;
	s->done = true;
}

/* produce one message and wait for Kafka's acknowledgement */
static bool
produce_acked(rd_kafka_t *rk, const dead_letter *d, char *err, size_t errlen)
{
	dr_state	s = {false, RD_KAFKA_RESP_ERR_NO_ERROR};
	rd_kafka_headers_t *h = rd_kafka_headers_new(d->nheaders + 4);
	rd_kafka_resp_err_t e;

	if (d->has_headers)
	{
		for (int i = 0; i < d->nheaders; i++)
			if (d->headers[i].name && strncmp(d->headers[i].name, "dlq-", 4) != 0)
				rd_kafka_header_add(h, d->headers[i].name, -1, d->headers[i].value,
									d->headers[i].value ? (ssize_t) d->headers[i].value_len : 0);
	}
	else
	{
		rd_kafka_header_add(h, "content-type", -1, "application/cloudevents+json", -1);
		if (d->event_id)
			rd_kafka_header_add(h, "event-id", -1, d->event_id, -1);
		if (d->event_type)
			rd_kafka_header_add(h, "event-type", -1, d->event_type, -1);
	}
	rd_kafka_header_add(h, "dlq-replayed-from", -1, d->name, -1);
	e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(d->origin_topic),
						  RD_KAFKA_V_PARTITION(d->origin_partition >= 0 ? d->origin_partition
											   : RD_KAFKA_PARTITION_UA),
						  RD_KAFKA_V_KEY(d->key, d->key ? strlen(d->key) : 0),
						  RD_KAFKA_V_VALUE(d->payload, d->payload_len),
						  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
						  RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(&s), RD_KAFKA_V_END);
	if (e)
	{
		rd_kafka_headers_destroy(h);
		snprintf(err, errlen, "%s", rd_kafka_err2str(e));
		return false;
	}
	while (!s.done)
		rd_kafka_poll(rk, 50);	/* message.timeout.ms bounds the wait */
	if (s.err)
		snprintf(err, errlen, "%s", rd_kafka_err2str(s.err));
	return !s.err;
}

/* the database's refusal in one line: message, detail, hint */
static void
print_refusal(const char *name, const PGresult *res, PGconn *conn)
{
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);

	fprintf(stderr, "%s: refused: %s%s%s%s%s\n", name,
			primary ? primary : PQerrorMessage(conn),
			detail ? ". " : "", detail ? detail : "", hint ? " " : "", hint ? hint : "");
}

static bool
exec_ok(PGconn *conn, const char *sql)
{
	PGresult   *res = PQexec(conn, sql);
	bool		ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	PQclear(res);
	return ok;
}

/* one replay; true when done */
bool
dlq_replay_one(PGconn *conn, rd_kafka_t **producer, const tk_daemon_config *cfg,
		   const dead_letter *d, bool force)
{
	char		err[512];
	PGresult   *res;
	const char *params[6];
	char		part[16],
				off[32];

	if (d->from_table)
	{
		const char *id = d->name + 3;

		params[0] = id;
		params[1] = force ? "true" : "false";
		res = PQexecParams(conn, "SELECT todo_kafka.dlq_requeue_outbox($1::bigint, $2::boolean)",
						   2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			print_refusal(d->name, res, conn);
			PQclear(res);
			return false;
		}
		printf("%s: outbox row re-queued as outbox row %s; the relay publishes it to %s\n",
			   d->name, PQgetvalue(res, 0, 0), d->origin_topic);
		PQclear(res);
		return true;
	}
	if (d->payload == NULL || d->origin_topic == NULL)
	{
		const char *hint = "";
		char		hbuf[128] = "";

		if (d->outbox_id)
		{
			snprintf(hbuf, sizeof(hbuf), " It is the relay's notice of outbox row %s, whose "
					 "whole row is kept in todo_kafka.dead_letters: replay that (see list, ids db:N).",
					 d->outbox_id);
			hint = hbuf;
		}
		fprintf(stderr, "%s: refused: the dead letter carries no original message to replay.%s\n",
				d->name, hint);
		return false;
	}
	if (*producer == NULL)
	{
		rd_kafka_conf_t *conf = dlq_kafka_conf(cfg, err, sizeof(err));

		if (conf == NULL ||
			!tk_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err)) ||
			!tk_kafka_conf_set(conf, "acks", "all", err, sizeof(err)) ||
			!tk_kafka_conf_set(conf, "message.timeout.ms", "30000", err, sizeof(err)))
		{
			fprintf(stderr, PROGRAM ": %s\n", err);
			return false;
		}
		rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
		if ((*producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))) == NULL)
		{
			fprintf(stderr, PROGRAM ": %s\n", err);
			return false;
		}
	}
	snprintf(part, sizeof(part), "%d", (int) d->origin_partition);
	snprintf(off, sizeof(off), "%lld", (long long) d->origin_offset);
	params[0] = d->name;
	params[1] = d->origin_topic;
	params[2] = d->origin_partition >= 0 ? part : NULL;
	params[3] = d->origin_offset >= 0 ? off : NULL;
	params[4] = d->event_id;
	params[5] = force ? "true" : "false";
	if (!exec_ok(conn, "BEGIN"))
	{
		fprintf(stderr, "%s: %s", d->name, PQerrorMessage(conn));
		return false;
	}
	res = PQexecParams(conn, "SELECT todo_kafka.dlq_claim_replay($1, $2, $3::int, $4::bigint, $5, $6::boolean)",
					   6, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		print_refusal(d->name, res, conn);
		PQclear(res);
		exec_ok(conn, "ROLLBACK");
		return false;
	}
	PQclear(res);
	if (!produce_acked(*producer, d, err, sizeof(err)))
	{
		fprintf(stderr, "%s: Kafka did not take the replay (%s); nothing recorded\n", d->name, err);
		exec_ok(conn, "ROLLBACK");
		return false;
	}
	if (!exec_ok(conn, "COMMIT"))
	{
		fprintf(stderr, "%s: replayed, but recording it failed: %s", d->name, PQerrorMessage(conn));
		return false;
	}
	printf("%s: replayed to %s[%d] (key %s)\n", d->name, d->origin_topic,
		   (int) d->origin_partition, d->key ? d->key : "none");
	return true;
}
