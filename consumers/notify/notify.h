/*-------------------------------------------------------------------------
 *
 * notify.h
 *	  todo-kafka-notify: what its stages share (settings, worker state)
 *
 * IDENTIFICATION
 *	  consumers/notify/notify.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TKN_NOTIFY_H
#define TKN_NOTIFY_H

#include <stdbool.h>

#include "consumer.h"
#include "email.h"
#include "webpush.h"

/* CloudEvents type of a queued notification */
#define TKN_TYPE_REQUESTED			"notification.requested"

/* which stage a process runs (see notify.c) */
typedef enum tkn_stage
{
	TKN_STAGE_ALL,				/* fan-out and every channel */
	TKN_STAGE_FANOUT,			/* fan-out only */
	TKN_STAGE_EMAIL,			/* delivery: email only */
	TKN_STAGE_REALTIME			/* delivery: push and in-app */
} tkn_stage;

/* the service's settings (notify_options in notify.c) */
typedef struct tkn_config
{
	char	   *stage;
	/* email */
	char	   *smtp_url;
	char	   *smtp_from;
	char	   *smtp_from_name;
	char	   *smtp_username;
	char	   *smtp_password;
	bool		smtp_starttls;
	char	   *smtp_ca_file;
	int			smtp_timeout_ms;
	/* push */
	char	   *vapid_key;
	char	   *vapid_subject;
	int			push_ttl;
	int			push_timeout_ms;
	char	   *push_ca_file;
	char	   *push_gateway_authorization;
	char	   *push_allowed_hosts;
	char	   *push_gateway_allowed_hosts;
	bool		push_allow_loopback;	/* development only */
	char	   *push_connect_to;	/* development only */
	/* delivery log */
	bool		resend_interrupted;
	int			delivery_log_days;
} tkn_config;

/* per worker (tkc_state) */
typedef struct tkn_worker
{
	tkn_stage	stage;
	const tkn_config *cfg;
	tkn_vapid  *vapid;			/* NULL when vapid_key is not set */
	tkn_smtp_config smtp;		/* points into cfg */
	tkn_smtp_conn smtp_conn;	/* the worker's kept SMTP session */
	tkn_push_options push;
} tkn_worker;

/* fanout.c */
extern bool tkn_fanout_validate(const void *config, tkc_event *ev);
extern tkc_result tkn_fanout_handle(tkc_worker *w, tkn_worker *nw, tkc_event *ev);
extern tkc_result tkn_fanout_sink(tkc_worker *w, tkc_event **evs, int n, int *written);

/* deliver.c */
extern bool tkn_deliver_validate(const void *config, tkc_event *ev);
extern tkc_result tkn_deliver_handle(tkc_worker *w, tkn_worker *nw, tkc_event *ev);

#endif							/* TKN_NOTIFY_H */
