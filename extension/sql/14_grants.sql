/*
 * extension/sql/14_grants.sql: who may do what.  Nothing in the schema is
 * PUBLIC's; each role gets EXECUTE on the functions its program calls and
 * SELECT where it reads (the roles: 01_schema_roles.sql).  Each service
 * has a role with only the functions its C code calls (consumers/<service>/,
 * plus the runtime's topic_of()), so the notifier, which talks to outside
 * servers, cannot append audit entries or purge the trail:
 *	 todo_kafka_audit_writer	audit_append, audit_consume, audit_skip,
 *								audit_offsets, purge_audit (retention_days),
 *								verify_audit (verify_interval_s), topic_of
 *	 todo_kafka_notifier		the delivery functions (11_notify_delivery.sql)
 *	 todo_kafka_projector		the project_* functions; SELECT task_view
 * todo_kafka_consumer is their union (membership only, no grants of its
 * own), kept for installs whose login still has it; give each service its
 * own login (README, Roles).
 */
REVOKE ALL ON ALL TABLES IN SCHEMA todo_kafka FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA todo_kafka FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA todo_kafka FROM PUBLIC;

/* the topic map */
GRANT EXECUTE ON FUNCTION
	todo_kafka.topic_of(text)
	TO todo_kafka_audit_writer, todo_kafka_notifier, todo_kafka_operator, todo_kafka_projector, todo_kafka_relay;
GRANT SELECT ON todo_kafka.topics TO todo_kafka_app, todo_kafka_auditor, todo_kafka_relay;

/* tasks */
GRANT EXECUTE ON FUNCTION
	todo_kafka.add_task(text,text,text,text,text[],timestamp with time zone,text,interval[],text[]),
	todo_kafka.complete_task(text,uuid),
	todo_kafka.delete_task(text,uuid),
	todo_kafka.get_task(text,uuid),
	todo_kafka.list_tasks(text,text),
	todo_kafka.update_task(text,uuid,text,text,text,text[],timestamp with time zone,boolean,boolean,text,interval[],text[])
	TO todo_kafka_app;
GRANT SELECT ON todo_kafka.tasks TO todo_kafka_auditor;

/* the outbox */
GRANT EXECUTE ON FUNCTION
	todo_kafka.publish(text,text,text,jsonb,jsonb)
	TO todo_kafka_app;
GRANT SELECT ON todo_kafka.outbox TO todo_kafka_relay;

/* the relay's API */
GRANT EXECUTE ON FUNCTION
	todo_kafka.relay_backlog(),
	todo_kafka.relay_commit_position(pg_snapshot,bigint),
	todo_kafka.relay_dead_letter(bigint,text,text),
	todo_kafka.relay_fire_reminders(integer,integer),
	todo_kafka.relay_lead(),
	todo_kafka.relay_page(bigint,pg_snapshot,pg_snapshot,bigint,integer),
	todo_kafka.relay_position(),
	todo_kafka.relay_sleeping(boolean)
	TO todo_kafka_relay;

/* reminders */
GRANT EXECUTE ON FUNCTION
	todo_kafka.set_user_time_zone(text,text)
	TO todo_kafka_app;
GRANT EXECUTE ON FUNCTION
	todo_kafka.fire_due_reminders(interval,integer)
	TO todo_kafka_relay;
GRANT SELECT ON todo_kafka.reminders TO todo_kafka_auditor;

/* audit */
GRANT EXECUTE ON FUNCTION
	todo_kafka.audit_append(jsonb),
	todo_kafka.audit_consume(text,jsonb),
	todo_kafka.audit_offsets(text,text),
	todo_kafka.audit_skip(text,text,integer,bigint)
	TO todo_kafka_audit_writer;
GRANT EXECUTE ON FUNCTION
	todo_kafka.verify_audit()
	TO todo_kafka_audit_writer, todo_kafka_auditor;
GRANT EXECUTE ON FUNCTION
	todo_kafka.purge_audit(interval)
	TO todo_kafka_audit_writer, todo_kafka_operator;
GRANT EXECUTE ON FUNCTION
	todo_kafka.search_audit(text,text,text,text,timestamp with time zone,timestamp with time zone,integer)
	TO todo_kafka_auditor;
GRANT EXECUTE ON FUNCTION
	todo_kafka.audit_retention()
	TO todo_kafka_auditor, todo_kafka_operator;
GRANT SELECT ON todo_kafka.audit_log TO todo_kafka_auditor;
GRANT SELECT ON todo_kafka.audit_offsets TO todo_kafka_auditor;
GRANT SELECT ON todo_kafka.audit_purges TO todo_kafka_auditor;

/* notify settings */
GRANT EXECUTE ON FUNCTION
	todo_kafka.add_push_subscription(text,text,text,text),
	todo_kafka.get_notification_settings(text),
	todo_kafka.remove_push_subscription(text,text),
	todo_kafka.set_notification_channels(text,text,text[]),
	todo_kafka.set_notification_email(text,text),
	todo_kafka.set_push_gateway(text,text),
	todo_kafka.set_quiet_hours(text,time without time zone,time without time zone)
	TO todo_kafka_app;

/* notify delivery */
GRANT EXECUTE ON FUNCTION
	todo_kafka.inbox_channel(text),
	todo_kafka.list_notifications(text,boolean,integer),
	todo_kafka.mark_notification_read(text,bigint)
	TO todo_kafka_app;
GRANT EXECUTE ON FUNCTION
	todo_kafka.deliver_in_app(text,text,text,uuid,text,text,text),
	todo_kafka.delivery_claim(text,text,text,text,boolean),
	todo_kafka.delivery_done(text,text,text,text,text,text),
	todo_kafka.delivery_retry(text,text,text,text),
	todo_kafka.notification_plan(text,text,text[],uuid,text,timestamp with time zone,boolean,timestamp with time zone),
	todo_kafka.notification_targets(text,text),
	todo_kafka.purge_notification_deliveries(interval),
	todo_kafka.push_subscription_gone(text)
	TO todo_kafka_notifier;

/* projection */
GRANT EXECUTE ON FUNCTION
	todo_kafka.project_apply(text,jsonb),
	todo_kafka.project_offsets(text),
	todo_kafka.project_prune_snapshots(integer),
	todo_kafka.project_reset(),
	todo_kafka.project_restore(bigint),
	todo_kafka.project_snapshot(integer),
	todo_kafka.project_snapshots()
	TO todo_kafka_projector;
GRANT SELECT ON todo_kafka.task_view TO todo_kafka_app, todo_kafka_auditor, todo_kafka_projector;
GRANT SELECT ON todo_kafka.projection_offsets TO todo_kafka_auditor;
GRANT SELECT ON todo_kafka.projection_snapshots TO todo_kafka_auditor;

/* dead letters */
GRANT EXECUTE ON FUNCTION
	todo_kafka.dlq_claim_replay(text,text,integer,bigint,text,boolean),
	todo_kafka.dlq_purge(interval,text,jsonb),
	todo_kafka.dlq_purged(text),
	todo_kafka.dlq_replays(),
	todo_kafka.dlq_requeue_outbox(bigint,boolean),
	todo_kafka.dlq_table_rows()
	TO todo_kafka_operator;
GRANT SELECT ON todo_kafka.dead_letter_replays TO todo_kafka_auditor;
GRANT SELECT ON todo_kafka.dead_letters TO todo_kafka_auditor;
GRANT SELECT, INSERT ON todo_kafka.dead_letters TO todo_kafka_relay;

/* the union of the service roles (quietly, when the role already has them) */
DO $union$
DECLARE
	r	text;
BEGIN
	FOREACH r IN ARRAY ARRAY['todo_kafka_audit_writer', 'todo_kafka_notifier', 'todo_kafka_projector']
	LOOP
		IF NOT pg_catalog.pg_has_role('todo_kafka_consumer', r, 'MEMBER') THEN
			EXECUTE pg_catalog.format('GRANT %I TO todo_kafka_consumer', r);
		END IF;
	END LOOP;
END
$union$;
