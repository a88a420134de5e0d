/*-------------------------------------------------------------------------
 *
 * dlq_print.c
 *	  todo-kafka-dlq: select dead letters and print them (list, show)
 *
 * Selection (dlq_matches, used by list and replay): every given condition
 * must hold: --origin-topic equal, failed at or after --since, failed
 * before --until, the name among --id.  No condition selects all (replay
 * insists on one, or --all, in dlq.c).
 *
 * list prints one line per selected dead letter: its name, age, error
 * code, origin (topic[partition]@offset, or the outbox row of a relay
 * notice), how often it was replayed and the reason.  show prints one
 * dead letter whole: the fields, the envelope or row pretty-printed, and
 * the original value as it will be replayed.
 *
 * Output goes to stdout; nothing here talks to PostgreSQL or Kafka.
 *
 * IDENTIFICATION
 *	  tools/dlq/dlq_print.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "dlq_int.h"

static void
format_age(int64_t failed_us, char *buf, size_t len)
{
	int64_t		s = failed_us > 0 ? (tk_wall_us() - failed_us) / 1000000 : -1;

	if (s < 0)
		snprintf(buf, len, "?");
	else if (s < 120)
		snprintf(buf, len, "%llds", (long long) s);
	else if (s < 7200)
		snprintf(buf, len, "%lldm", (long long) s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%lldh", (long long) s / 3600);
	else
		snprintf(buf, len, "%lldd", (long long) s / 86400);
}

bool
dlq_matches(const dlq_config *o, const dead_letter *d, int64_t since, int64_t until)
{
	if (o->origin_topic[0] && (d->origin_topic == NULL || strcmp(o->origin_topic, d->origin_topic) != 0))
		return false;
	if (o->since[0] && d->failed_us < since)
		return false;
	if (o->until[0] && d->failed_us >= until)
		return false;
	if (o->ids[0])
	{
		char	   *ids = strdup(o->ids);
		bool		found = false;

		for (char *tok = strtok(ids, ", "); tok && !found; tok = strtok(NULL, ", "))
			found = strcmp(tok, d->name) == 0;
		free(ids);
		return found;
	}
	return true;
}

void
dlq_print_list(const dl_list *l, const dlq_config *o, int64_t since, int64_t until)
{
	int			shown = 0;

	printf("%-10s %-6s %-18s %-40s %-8s %s\n", "ID", "AGE", "ERROR", "ORIGIN", "REPLAYED", "REASON");
	for (int i = 0; i < l->n; i++)
	{
		const dead_letter *d = &l->items[i];
		char		age[16];
		char		origin[256];

		if (!dlq_matches(o, d, since, until))
			continue;
		format_age(d->failed_us, age, sizeof(age));
		if (d->origin_partition >= 0)
			snprintf(origin, sizeof(origin), "%s[%d]@%lld", d->origin_topic ? d->origin_topic : "?",
					 (int) d->origin_partition, (long long) d->origin_offset);
		else if (d->outbox_id)
			snprintf(origin, sizeof(origin), "%s (outbox row %s)",
					 d->origin_topic ? d->origin_topic : "?", d->outbox_id);
		else
			snprintf(origin, sizeof(origin), "%s", d->origin_topic ? d->origin_topic : "?");
		char		replayed[16];

		snprintf(replayed, sizeof(replayed), d->replays == 0 ? "no" : d->replays == 1 ? "yes" : "%dx",
				 d->replays);
		printf("%-10s %-6s %-18s %-40s %-8s %s\n", d->name, age, d->error ? d->error : "?", origin,
			   replayed, d->reason ? d->reason : "");
		shown++;
	}
	printf("(%d dead letter%s)\n", shown, shown == 1 ? "" : "s");
}

void
dlq_print_one(const dead_letter *d)
{
	char		age[16];
	cJSON	   *raw = cJSON_Parse(d->raw);
	char	   *pretty = raw ? cJSON_Print(raw) : NULL;

	format_age(d->failed_us, age, sizeof(age));
	printf("id:              %s\n", d->name);
	printf("where:           %s\n", d->from_table ? "table todo_kafka.dead_letters (relay poison row)"
		   : "dead-letter topic");
	printf("age:             %s\n", age);
	printf("error:           %s\n", d->error ? d->error : "");
	printf("reason:          %s\n", d->reason ? d->reason : "");
	printf("origin topic:    %s\n", d->origin_topic ? d->origin_topic : "");
	if (d->origin_partition >= 0)
		printf("origin position: partition %d, offset %lld\n", (int) d->origin_partition,
			   (long long) d->origin_offset);
	if (d->outbox_id)
		printf("outbox row:      %s\n", d->outbox_id);
	printf("key:             %s\n", d->key ? d->key : "(none)");
	printf("event id:        %s\n", d->event_id ? d->event_id : "");
	printf("event type:      %s\n", d->event_type ? d->event_type : "");
	if (d->group)
		printf("consumer group:  %s\n", d->group);
	printf("replayed:        %s", d->replays ? "yes" : "no");
	if (d->replays > 1)
		printf(" (%d times)", d->replays);
	printf("\n%s:\n%s\n", d->from_table ? "row" : "envelope", pretty ? pretty : d->raw);
	if (d->payload)
		printf("original value (%zu bytes):\n%.*s\n", d->payload_len, (int) d->payload_len, d->payload);
	cJSON_free(pretty);
	cJSON_Delete(raw);
}
