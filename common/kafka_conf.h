/*-------------------------------------------------------------------------
 *
 * kafka_conf.h
 *	  librdkafka property lists, production profile, log routing
 *
 * IDENTIFICATION
 *	  common/kafka_conf.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TK_KAFKA_CONF_H
#define TK_KAFKA_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "kvlist.h"

extern bool tk_kafka_conf_set(rd_kafka_conf_t *conf, const char *key,
							  const char *value, char *errbuf, size_t errlen);
extern bool tk_kafka_conf_apply(rd_kafka_conf_t *conf, const tk_kvlist *props,
								char *errbuf, size_t errlen);
extern bool tk_kafka_check_production(const tk_kvlist *props,
									  char *errbuf, size_t errlen);
extern rd_kafka_conf_t *tk_kafka_conf_new(const char *client_id,
										  const tk_kvlist *props,
										  char *errbuf, size_t errlen);
extern void tk_kafka_log_cb(const rd_kafka_t *rk, int level,
							const char *fac, const char *buf);

#endif							/* TK_KAFKA_CONF_H */
