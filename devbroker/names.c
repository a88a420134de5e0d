/*-------------------------------------------------------------------------
 *
 * names.c
 *	  the names control commands accept: API keys, error codes, topics
 *
 * The devbroker's control commands (command.c) name Kafka request types
 * by the protocol guide's names or by number (Produce, 0), error codes by
 * librdkafka's names or by number, and topics by Kafka's rules.  Parsing
 * them is kept here, apart from what the commands do, and only accepts
 * what librdkafka knows: a typo must not inject a meaningless code.
 *
 * IDENTIFICATION
 *	  devbroker/names.c
 *
 *-------------------------------------------------------------------------
 */
#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "devbroker.h"

/* Kafka protocol request types, by the names the protocol guide uses */
static const struct
{
	const char *name;
	int16_t		key;
}			api_keys[] = {
	{"Produce", 0},
	{"Fetch", 1},
	{"ListOffsets", 2},
	{"Metadata", 3},
	{"OffsetCommit", 8},
	{"OffsetFetch", 9},
	{"FindCoordinator", 10},
	{"JoinGroup", 11},
	{"Heartbeat", 12},
	{"LeaveGroup", 13},
	{"SyncGroup", 14},
	{"DescribeGroups", 15},
	{"ListGroups", 16},
	{"SaslHandshake", 17},
	{"ApiVersions", 18},
	{"CreateTopics", 19},
	{"DeleteTopics", 20},
	{"DeleteRecords", 21},
	{"InitProducerId", 22},
	{"OffsetForLeaderEpoch", 23},
	{"AddPartitionsToTxn", 24},
	{"AddOffsetsToTxn", 25},
	{"EndTxn", 26},
	{"TxnOffsetCommit", 28},
	{"DescribeConfigs", 32},
	{"AlterConfigs", 33},
	{"SaslAuthenticate", 36},
};

/* an API key by number or by name (case-insensitive) */
bool
devbroker_parse_api_key(const char *s, int16_t *key)
{
	long		v;
	size_t		i;

	if (tk_config_parse_int(s, 0, SHRT_MAX, &v))
	{
		*key = (int16_t) v;
		return true;
	}
	for (i = 0; i < sizeof(api_keys) / sizeof(api_keys[0]); i++)
	{
		if (strcasecmp(s, api_keys[i].name) == 0)
		{
			*key = api_keys[i].key;
			return true;
		}
	}
	return false;
}

const char *
devbroker_api_key_name(int16_t key)
{
	size_t		i;

	for (i = 0; i < sizeof(api_keys) / sizeof(api_keys[0]); i++)
		if (api_keys[i].key == key)
			return api_keys[i].name;
	return "?";
}

/*
 * An error code by number or by librdkafka's name for it, with or without
 * the "RD_KAFKA_RESP_ERR_" prefix: NOT_LEADER_FOR_PARTITION, _TRANSPORT.
 */
bool
devbroker_parse_error_code(const char *s, rd_kafka_resp_err_t *err)
{
	const struct rd_kafka_err_desc *descs;
	size_t		cnt;
	size_t		i;
	long		v;
	bool		numeric;

	numeric = tk_config_parse_int(s, INT_MIN, INT_MAX, &v);
	if (!numeric && strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18) == 0)
		s += 18;

	/* only codes librdkafka knows: a typo must not inject a meaningless code */
	rd_kafka_get_err_descs(&descs, &cnt);
	for (i = 0; i < cnt; i++)
	{
		if (descs[i].name == NULL)
			continue;
		if (numeric ? (long) descs[i].code == v
			: strcasecmp(s, descs[i].name) == 0)
		{
			*err = descs[i].code;
			return true;
		}
	}
	return false;
}

/* Kafka's legal topic names: [a-zA-Z0-9._-]{1,249} */
bool
devbroker_valid_topic_name(const char *s)
{
	size_t		len = strlen(s);
	size_t		i;

	if (len == 0 || len > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char) s[i]) && s[i] != '.' && s[i] != '_' &&
			s[i] != '-')
			return false;
	return true;
}
