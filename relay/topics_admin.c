/*-------------------------------------------------------------------------
 *
 * topics_admin.c
 *	  the stream -> topic map and topic creation at start-up
 *
 * todo_kafka.topics maps logical streams (what outbox rows name) to Kafka
 * topics.  The relay loads it whenever it becomes leader, so renaming a
 * topic is an UPDATE plus a relay restart or reconnect.  Each topic gets a
 * cached rd_kafka_topic_t, so producing does not look names up.
 *
 * Topic creation: once per process, the leader asks the cluster's metadata
 * which mapped topics are missing and creates those through the Admin API
 * (CreateTopics) with the partitions, replication factor and retention.ms
 * of the map.  A cluster that cannot create topics (librdkafka's mock
 * cluster, behind todo-kafka-devbroker, does not answer CreateTopics; an
 * ACL may forbid it) gets one warning and the relay goes on: messages to
 * a missing topic wait in librdkafka until it exists.  Each attempt is an
 * administrative operation: todo_kafka.relay_record_topic_create() records
 * it (topic, partitions, replication factor, configs, this instance, and
 * succeeded or failed with the broker's error) in admin_operations and the
 * audit chain.  Nothing missing, nothing recorded.  The relay never alters
 * the config of an existing topic, so there is no config change to audit.
 *
 * Runs on the main thread; the Admin API calls block for at most
 * timeout_ms, only at start-up.
 *
 * IDENTIFICATION
 *	  relay/topics_admin.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay.h"

/* the Admin API calls wait at most this long, once, at start-up */
#define TOPIC_ADMIN_TIMEOUT_MS 5000

void
relay_topics_free(relay_topics *topics)
{
	for (int i = 0; i < topics->n; i++)
	{
		free(topics->items[i].stream);
		free(topics->items[i].topic);
		if (topics->items[i].rkt)
			rd_kafka_topic_destroy(topics->items[i].rkt);
	}
	free(topics->items);
	topics->items = NULL;
	topics->n = 0;
}

relay_topic *
relay_topics_find(relay_topics *topics, const char *stream)
{
	for (int i = 0; i < topics->n; i++)
		if (strcmp(topics->items[i].stream, stream) == 0)
			return &topics->items[i];
	return NULL;
}

/* is the topic in the cluster metadata? */
static bool
metadata_has(const rd_kafka_metadata_t *md, const char *topic)
{
	for (int i = 0; i < md->topic_cnt; i++)
		if (strcmp(md->topics[i].topic, topic) == 0 &&
			md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
			return true;
	return false;
}

/*
 * Record one creation attempt (error NULL: it succeeded).  A record that
 * cannot be written is logged and skipped: the topic is there or not
 * either way, and the relay goes on.
 */
static void
record_attempt(PGconn *conn, const relay_topic *t, const char *error)
{
	char		partitions[16];
	char		replication[16];
	char		configs[64];
	char		instance[300];
	char		host[256] = "";
	const char *params[6];
	PGresult   *res;

	snprintf(partitions, sizeof(partitions), "%d", t->partitions);
	snprintf(replication, sizeof(replication), "%d", t->replication_factor);
	snprintf(configs, sizeof(configs), "{\"retention.ms\": \"%lld\"}", t->retention_ms);
	if (gethostname(host, sizeof(host) - 1) != 0)
		strcpy(host, "unknown");
	snprintf(instance, sizeof(instance), "%s/%d", host, (int) getpid());
	params[0] = t->topic;
	params[1] = partitions;
	params[2] = replication;
	params[3] = configs;
	params[4] = instance;
	params[5] = error;
	res = PQexecParams(conn,
					   "SELECT todo_kafka.relay_record_topic_create($1, $2::integer, $3::integer, $4::jsonb, $5, $6)",
					   6, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		relay_log_api_error(conn, res, "todo_kafka.relay_record_topic_create()",
							"record the creation of a topic as an administrative operation");
	PQclear(res);
}

/* the map's entry of a topic name */
static const relay_topic *
asked_topic(const relay_topic **asked, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(asked[i]->topic, name) == 0)
			return asked[i];
	return NULL;
}

static void
relay_topics_ensure(rd_kafka_t *rk, PGconn *conn, const relay_topics *topics,
					int timeout_ms)
{
	const rd_kafka_metadata_t *md = NULL;
	rd_kafka_NewTopic_t **newt = NULL;
	const relay_topic **asked = NULL;
	rd_kafka_queue_t *q = NULL;
	rd_kafka_AdminOptions_t *opts = NULL;
	rd_kafka_event_t *ev = NULL;
	rd_kafka_resp_err_t err;
	int			nmissing = 0;
	char		errstr[512];
	const char *all_failed = NULL;	/* the whole request's error */

	err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
	if (err)
	{
		tk_log(TK_LOG_WARNING, "could not read Kafka metadata to check topics: %s",
			   rd_kafka_err2str(err));
		return;
	}
	newt = calloc(topics->n > 0 ? topics->n : 1, sizeof(*newt));
	asked = calloc(topics->n > 0 ? topics->n : 1, sizeof(*asked));
	if (newt == NULL || asked == NULL)
		goto done;
	for (int i = 0; i < topics->n; i++)
	{
		const relay_topic *t = &topics->items[i];
		char		retention[32];

		if (metadata_has(md, t->topic))
			continue;
		newt[nmissing] = rd_kafka_NewTopic_new(t->topic, t->partitions,
											   t->replication_factor,
											   errstr, sizeof(errstr));
		if (newt[nmissing] == NULL)
		{
			tk_log(TK_LOG_WARNING, "cannot describe topic \"%s\" for creation: %s",
				   t->topic, errstr);
			record_attempt(conn, t, errstr);
			continue;
		}
		snprintf(retention, sizeof(retention), "%lld", t->retention_ms);
		rd_kafka_NewTopic_set_config(newt[nmissing], "retention.ms", retention);
		tk_log(TK_LOG_INFO, "creating topic \"%s\" (%d partitions, replication factor %d, retention.ms %s)",
			   t->topic, t->partitions, t->replication_factor, retention);
		asked[nmissing++] = t;
	}
	if (nmissing == 0)
		goto done;

	q = rd_kafka_queue_new(rk);
	opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof(errstr));
	rd_kafka_CreateTopics(rk, newt, nmissing, opts, q);
	ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
	if (ev == NULL)
	{
		snprintf(errstr, sizeof(errstr), "no answer to CreateTopics within %d ms", timeout_ms + 1000);
		all_failed = errstr;
	}
	else if (rd_kafka_event_error(ev))
		all_failed = rd_kafka_event_error_string(ev);
	if (all_failed)
	{
		tk_log(TK_LOG_WARNING, "the Kafka cluster cannot create topics (%s); going on, messages to missing topics wait until they exist",
			   all_failed);
		for (int i = 0; i < nmissing; i++)
			record_attempt(conn, asked[i], all_failed);
	}
	else
	{
		const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
		size_t		cnt;
		const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &cnt);

		for (size_t i = 0; i < cnt; i++)
		{
			const char *name = rd_kafka_topic_result_name(tr[i]);
			const relay_topic *t = asked_topic(asked, nmissing, name);
			rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
			const char *why = NULL;

			if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
				tk_log(TK_LOG_INFO, "created topic \"%s\"", name);
			else
			{
				why = rd_kafka_topic_result_error_string(tr[i]);
				if (why == NULL || why[0] == '\0')
					why = rd_kafka_err2str(e);
				/* another relay or an operator made it meanwhile: not a problem */
				tk_log(e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS ? TK_LOG_INFO : TK_LOG_WARNING,
					   "could not create topic \"%s\": %s; going on", name, why);
			}
			if (t)
				record_attempt(conn, t, why);
		}
	}

done:
	if (ev)
		rd_kafka_event_destroy(ev);
	if (opts)
		rd_kafka_AdminOptions_destroy(opts);
	if (q)
		rd_kafka_queue_destroy(q);
	if (newt)
	{
		rd_kafka_NewTopic_destroy_array(newt, nmissing);
		free(newt);
	}
	free(asked);
	rd_kafka_metadata_destroy(md);
}

/*
 * Replace *topics with the current map; false if the query failed.  With
 * ensure, first create the missing topics (relay_topics_ensure): before
 * the map's rd_kafka_topic_t exist, whose metadata requests would let a
 * broker with auto.create.topics.enable make them with its own defaults.
 */
bool
relay_topics_load(PGconn *conn, rd_kafka_t *rk, relay_topics *topics, bool ensure)
{
	PGresult   *res;
	relay_topics fresh = {NULL, 0};
	int			n;

	res = PQexec(conn,
				 "SELECT stream, topic, partitions, replication_factor, retention_ms "
				 "FROM todo_kafka.topics ORDER BY stream");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		tk_log(TK_LOG_ERROR, "could not read todo_kafka.topics: %s", PQerrorMessage(conn));
		PQclear(res);
		return false;
	}
	n = PQntuples(res);
	fresh.items = calloc(n > 0 ? n : 1, sizeof(relay_topic));
	if (fresh.items == NULL)
	{
		PQclear(res);
		return false;
	}
	for (int i = 0; i < n; i++)
	{
		relay_topic *t = &fresh.items[fresh.n++];

		t->stream = strdup(PQgetvalue(res, i, 0));
		t->topic = strdup(PQgetvalue(res, i, 1));
		t->partitions = atoi(PQgetvalue(res, i, 2));
		t->replication_factor = atoi(PQgetvalue(res, i, 3));
		t->retention_ms = atoll(PQgetvalue(res, i, 4));
		if (t->stream == NULL || t->topic == NULL)
		{
			PQclear(res);
			relay_topics_free(&fresh);
			return false;
		}
	}
	PQclear(res);
	if (ensure)
		relay_topics_ensure(rk, conn, &fresh, TOPIC_ADMIN_TIMEOUT_MS);
	for (int i = 0; i < fresh.n; i++)
	{
		fresh.items[i].rkt = rd_kafka_topic_new(rk, fresh.items[i].topic, NULL);
		if (fresh.items[i].rkt == NULL)
		{
			relay_topics_free(&fresh);
			return false;
		}
	}
	relay_topics_free(topics);
	*topics = fresh;
	for (int i = 0; i < topics->n; i++)
		tk_log(TK_LOG_DEBUG, "stream \"%s\" -> topic \"%s\"",
			   topics->items[i].stream, topics->items[i].topic);
	return true;
}
