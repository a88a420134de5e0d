#!/bin/sh
# deploy/kafka/acls.sh: the Kafka ACLs of every todo_kafka principal, and
# nothing else (run it once per cluster, as a Kafka admin; adding an ACL
# that exists is a no-op).
#
#   KAFKA_BOOTSTRAP=kafka1.example.net:9093 \
#   KAFKA_ADMIN_CONFIG=/etc/kafka/admin.properties \
#   deploy/kafka/acls.sh
#
# KAFKA_BIN: the directory of kafka-acls.sh (default: on PATH).  DRY_RUN=1
# prints the commands instead of running them.
# TOPIC_<STREAM>: the topic of a stream when todo_kafka.topics renames it
# (e.g. TOPIC_TASK_EVENTS=task-events); GROUP_PREFIX: the services'
# group_prefix (default todo-chatbot-).  Principals are the SCRAM users of
# users.sh: User:todo-kafka-<daemon>.
#
# Who needs what (tests/611_kafka_acls.pl derives it from the code and
# fails if this file grants more or less):
#   relay    writes the streams outbox rows name and the dead letters of
#            poison rows; creates every topic of todo_kafka.topics at start
#            (create_topics; Describe to see which exist)
#   audit, project, notify
#            read their topics and their group, write dead letters; notify
#            also writes the notifications it queues; notify's stages are
#            groups of their own
#   dlq      reads the dead-letter topic (a plain assigned consumer, group
#            todo-kafka-dlq, nothing committed), replays to the topics the
#            services read (a relay's poison row goes back through the outbox)
# Every producer is idempotent (enable.idempotence): IdempotentWrite on the
# cluster, which Kafka before 3.0 requires.  A stream you add for
# todo_kafka.publish() needs a relay Write/Create line for its topic, and
# Read lines for whoever consumes it.
set -eu

: "${KAFKA_BOOTSTRAP:?set KAFKA_BOOTSTRAP to host:port of a broker}"
: "${KAFKA_ADMIN_CONFIG:?set KAFKA_ADMIN_CONFIG to the admin client properties file (SASL_SSL login)}"
ACLS="${KAFKA_BIN:+$KAFKA_BIN/}kafka-acls.sh"

TASK_EVENTS=${TOPIC_TASK_EVENTS:-todo.task.events}
TASK_UPDATES=${TOPIC_TASK_UPDATES:-todo.task.updates}
AUDIT=${TOPIC_AUDIT:-todo.audit.log}
REMINDERS=${TOPIC_REMINDERS:-todo.reminders}
NOTIFICATIONS=${TOPIC_NOTIFICATIONS:-todo.notifications}
DEAD_LETTER=${TOPIC_DEAD_LETTER:-todo.dead.letter}
GROUP=${GROUP_PREFIX:-todo-chatbot-}

# acl PRINCIPAL OPERATION... RESOURCE-OPTION NAME
acl() {
	principal=$1
	shift
	set -- --allow-principal "User:$principal" "$@"
	set -- "$ACLS" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_ADMIN_CONFIG" --add "$@"
	if [ -n "${DRY_RUN:-}" ]; then echo "$*"; else "$@"; fi
}

# relay
for t in "$TASK_EVENTS" "$TASK_UPDATES" "$AUDIT" "$REMINDERS" "$DEAD_LETTER"; do
	acl todo-kafka-relay --operation Write --operation Create --topic "$t"
done
acl todo-kafka-relay --operation Create --operation Describe --topic "$NOTIFICATIONS"
acl todo-kafka-relay --operation IdempotentWrite --cluster

# audit
acl todo-kafka-audit --operation Read --topic "$AUDIT"
acl todo-kafka-audit --operation Read --group "${GROUP}audit"
acl todo-kafka-audit --operation Write --topic "$DEAD_LETTER"
acl todo-kafka-audit --operation IdempotentWrite --cluster

# project
acl todo-kafka-project --operation Read --topic "$TASK_EVENTS"
acl todo-kafka-project --operation Read --group "${GROUP}project"
acl todo-kafka-project --operation Write --topic "$DEAD_LETTER"
acl todo-kafka-project --operation IdempotentWrite --cluster

# notify (stages: all, fanout, email, realtime)
for t in "$TASK_EVENTS" "$REMINDERS" "$NOTIFICATIONS"; do
	acl todo-kafka-notify --operation Read --topic "$t"
done
for g in notify notify-fanout notify-email notify-realtime; do
	acl todo-kafka-notify --operation Read --group "$GROUP$g"
done
acl todo-kafka-notify --operation Write --topic "$NOTIFICATIONS"
acl todo-kafka-notify --operation Write --topic "$DEAD_LETTER"
acl todo-kafka-notify --operation IdempotentWrite --cluster

# dlq
acl todo-kafka-dlq --operation Read --topic "$DEAD_LETTER"
acl todo-kafka-dlq --operation Read --group todo-kafka-dlq
for t in "$TASK_EVENTS" "$AUDIT" "$REMINDERS" "$NOTIFICATIONS"; do
	acl todo-kafka-dlq --operation Write --topic "$t"
done
acl todo-kafka-dlq --operation IdempotentWrite --cluster
