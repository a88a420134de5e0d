#!/bin/sh
# deploy/kafka/users.sh: the SCRAM-SHA-512 users of todo_kafka, one per
# daemon (the principals acls.sh grants to).  Passwords come from the
# environment, never from this file or the command line of a shell history:
#
#   KAFKA_BOOTSTRAP=kafka1.example.net:9093 \
#   KAFKA_ADMIN_CONFIG=/etc/kafka/admin.properties \
#   TODO_KAFKA_RELAY_PASSWORD=... TODO_KAFKA_AUDIT_PASSWORD=... \
#   TODO_KAFKA_NOTIFY_PASSWORD=... TODO_KAFKA_PROJECT_PASSWORD=... \
#   TODO_KAFKA_DLQ_PASSWORD=... deploy/kafka/users.sh
#
# KAFKA_BIN: the directory of kafka-configs.sh (default: on PATH); DRY_RUN=1
# prints the commands (passwords masked) instead of running them.  Each
# daemon then logs in with (its config file, mode 0600):
#   kafka.security.protocol = SASL_SSL
#   kafka.sasl.mechanism = SCRAM-SHA-512
#   kafka.sasl.username = todo-kafka-<daemon>
#   kafka.sasl.password = <its password>
# A user that is not given a password is skipped, with a note.
set -eu

: "${KAFKA_BOOTSTRAP:?set KAFKA_BOOTSTRAP to host:port of a broker}"
: "${KAFKA_ADMIN_CONFIG:?set KAFKA_ADMIN_CONFIG to the admin client properties file (SASL_SSL login)}"
CONFIGS="${KAFKA_BIN:+$KAFKA_BIN/}kafka-configs.sh"

for daemon in relay audit notify project dlq; do
	var=TODO_KAFKA_$(echo "$daemon" | tr a-z A-Z)_PASSWORD
	eval "password=\${$var:-}"
	if [ -z "$password" ]; then
		echo "users.sh: $var is not set: user todo-kafka-$daemon skipped" >&2
		continue
	fi
	if [ -n "${DRY_RUN:-}" ]; then
		password='***'
		run=echo
	else
		run=
	fi
	$run "$CONFIGS" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_ADMIN_CONFIG" \
		--alter --entity-type users --entity-name "todo-kafka-$daemon" \
		--add-config "SCRAM-SHA-512=[iterations=8192,password=$password]"
done
