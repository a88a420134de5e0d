/*-------------------------------------------------------------------------
 *
 * kafka_conf.c
 *	  librdkafka property lists, production profile, log routing
 *
 * Daemons collect librdkafka properties from their defaults table, the
 * config file ("kafka.<prop> = value") and -X flags into a tk_kvlist
 * (kvlist.c), in
 * that order, later settings winning; tk_kafka_conf_apply() then hands
 * them to rd_kafka_conf_set().  Errors name the property and never echo a
 * secret value (tk_config_is_secret()).
 *
 * Production profile: refuse to run unless the connection is both
 * authenticated and encrypted, i.e. security.protocol = SASL_SSL, a SASL
 * mechanism is chosen, and certificate verification is not switched off.
 *
 * tk_kafka_conf_new() makes a librdkafka configuration from a property
 * list: client.id, the properties in order, the log callback, and the
 * shared Kafka error handler told which settings to name (kafka_errors.c).
 * A compression codec this librdkafka was built without falls back to
 * none with a warning rather than refusing to start.
 *
 * tk_kafka_log_cb routes librdkafka's log lines into tk_log(), known
 * connection problems through kafka_errors.c's rate limit.  Threading
 * contract: librdkafka calls it from its internal threads; tk_log() is
 * thread-safe.
 *
 * IDENTIFICATION
 *	  common/kafka_conf.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "kafka_conf.h"
#include "kafka_errors.h"
#include "log.h"

bool
tk_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
				  char *errbuf, size_t errlen)
{
	char		rkerr[512];

	if (rd_kafka_conf_set(conf, key, value, rkerr, sizeof(rkerr)) != RD_KAFKA_CONF_OK)
	{
		if (tk_config_is_secret(key))
			snprintf(errbuf, errlen, "invalid Kafka property \"%s\" (value redacted)", key);
		else
			snprintf(errbuf, errlen, "invalid Kafka property \"%s\" = \"%s\": %s",
					 key, value, rkerr);
		return false;
	}
	return true;
}

bool
tk_kafka_conf_apply(rd_kafka_conf_t *conf, const tk_kvlist *props,
					char *errbuf, size_t errlen)
{
	for (int i = 0; i < props->n; i++)
		if (!tk_kafka_conf_set(conf, props->items[i].key, props->items[i].value,
							   errbuf, errlen))
			return false;
	return true;
}

bool
tk_kafka_check_production(const tk_kvlist *props, char *errbuf, size_t errlen)
{
	const char *proto = tk_kvlist_get(props, "security.protocol");
	const char *mech = tk_kvlist_get(props, "sasl.mechanism");
	const char *mechs = tk_kvlist_get(props, "sasl.mechanisms");
	const char *verify = tk_kvlist_get(props, "enable.ssl.certificate.verification");

	if (proto == NULL || strcasecmp(proto, "sasl_ssl") != 0)
	{
		snprintf(errbuf, errlen,
				 "production profile requires security.protocol=SASL_SSL (got %s)",
				 proto ? proto : "plaintext");
		return false;
	}
	if ((mech == NULL || *mech == '\0') && (mechs == NULL || *mechs == '\0'))
	{
		snprintf(errbuf, errlen,
				 "production profile requires a SASL mechanism (sasl.mechanism, e.g. SCRAM-SHA-512)");
		return false;
	}
	if (verify && (strcasecmp(verify, "false") == 0 || strcmp(verify, "0") == 0))
	{
		snprintf(errbuf, errlen,
				 "production profile refuses enable.ssl.certificate.verification=false");
		return false;
	}
	return true;
}

/*
 * A new configuration from props, with client.id, the log callback and the
 * error handler's settings; NULL with errbuf filled on a bad property.
 */
rd_kafka_conf_t *
tk_kafka_conf_new(const char *client_id, const tk_kvlist *props,
				  char *errbuf, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		rkerr[512];

	if (client_id && !tk_kafka_conf_set(conf, "client.id", client_id, errbuf, errlen))
		goto fail;
	for (int i = 0; i < props->n; i++)
	{
		const char *k = props->items[i].key;
		const char *v = props->items[i].value;

		if ((strcmp(k, "compression.codec") == 0 || strcmp(k, "compression.type") == 0) &&
			rd_kafka_conf_set(conf, k, v, rkerr, sizeof(rkerr)) != RD_KAFKA_CONF_OK)
		{
			tk_log(TK_LOG_WARNING, "compression \"%s\" is not supported by this librdkafka (%s); using none",
				   v, rkerr);
			rd_kafka_conf_set(conf, k, "none", NULL, 0);
			continue;
		}
		if (!tk_kafka_conf_set(conf, k, v, errbuf, errlen))
			goto fail;
	}
	rd_kafka_conf_set_log_cb(conf, tk_kafka_log_cb);
	tk_kafka_errors_configure(props);
	return conf;

fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/* librdkafka log callback: runs on librdkafka's internal threads */
void
tk_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	tk_log_level l;

	(void) rk;
	/* a known connection problem: said once in plain words (kafka_errors.c) */
	if (tk_kafka_error_log_line(level, fac, buf))
		return;
	if (level <= 3)
		l = TK_LOG_ERROR;
	else if (level == 4)
		l = TK_LOG_WARNING;
	else if (level <= 6)
		l = TK_LOG_INFO;
	else
		l = TK_LOG_DEBUG;
	tk_log(l, "kafka: %s: %s", fac, buf);
}
