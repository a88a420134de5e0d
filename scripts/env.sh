# scripts/env.sh: shared setup for scripts/test, scripts/demo and bench/*.
#
# Sourced, not run.  It makes a fresh Debian machine ready:
#   tk_install_packages   apt-get the build and test dependencies if missing
#   tk_build_install      make && make install (the extension and programs)
#   tk_prepare_workdir    copy the tree to $TK_WORK/src, owned by $TK_USER
#   tk_start_pg           a scratch PostgreSQL cluster in $TK_WORK/pgdata
#   tk_as_user CMD...     run a command as the unprivileged $TK_USER
# PostgreSQL's initdb refuses to run as root, so servers and tests run as
# $TK_USER (created if missing).  Every step is safe to repeat.

set -euo pipefail

TK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TK_USER=${TK_USER:-todokafka}
TK_WORK=${TK_WORK:-/tmp/todo_kafka-work}
TK_PGPORT=${TK_PGPORT:-54329}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PG_BINDIR=$("$PG_CONFIG" --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
export PG_CONFIG

TK_PACKAGES="build-essential pkg-config postgresql-15 postgresql-server-dev-15 libpq-dev
	librdkafka-dev libcjson-dev libcurl4-openssl-dev libmicrohttpd-dev kcat
	libssl-dev python3-aiosmtpd python3-cryptography libipc-run-perl libjson-pp-perl
	python3-jsonschema rsync bc curl prometheus
	python3-yaml debhelper dpkg-dev fakeroot help2man lintian postgresql-server-dev-all systemd
	postfix"

tk_log() { printf '==> %s\n' "$*" >&2; }

tk_sudo() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

tk_install_packages() {
	local missing="" p
	for p in $TK_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		tk_log "installing:$missing"
		tk_sudo apt-get update -qq
		tk_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
	fi
	# Debian starts a default cluster on 5432; we do not need it
	if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
		tk_sudo pg_ctlcluster 15 main stop 2>/dev/null || true
	fi
	# Debian's prometheus starts a server and a node exporter; tests need only promtool
	if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
		tk_sudo systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
	fi
	# postfix is here for smtp-source (bench/notify's floor), not as a mail server
	if command -v systemctl >/dev/null && systemctl is-active --quiet postfix 2>/dev/null; then
		tk_sudo systemctl disable --now postfix >/dev/null 2>&1 || true
	fi
}

tk_build_install() {
	tk_log "building and installing todo_kafka"
	make -C "$TK_ROOT" -s PG_CONFIG="$PG_CONFIG" ${TK_CFLAGS:+PG_CFLAGS="$TK_CFLAGS" EXTRA_CFLAGS="$TK_CFLAGS"} \
		${TK_MAKE_ARGS:-} >/dev/null
	tk_sudo make -C "$TK_ROOT" -s PG_CONFIG="$PG_CONFIG" ${TK_MAKE_ARGS:-} install >/dev/null
}

tk_as_user() {
	if [ "$(id -un)" = "$TK_USER" ]; then
		"$@"
	else
		runuser -u "$TK_USER" -- env PATH="$PG_BINDIR:$PATH" PG_CONFIG="$PG_CONFIG" \
			PGHOST="$TK_WORK/sock" PGPORT="$TK_PGPORT" "$@"
	fi
}

tk_prepare_workdir() {
	if [ "$(id -u)" -eq 0 ]; then
		id "$TK_USER" >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash "$TK_USER"
	else
		TK_USER=$(id -un)
	fi
	tk_stop_pg
	tk_sudo rm -rf "$TK_WORK"
	tk_sudo mkdir -p "$TK_WORK/src" "$TK_WORK/sock"
	rsync -a --exclude .git "$TK_ROOT/" "$TK_WORK/src/"
	tk_sudo chown -R "$TK_USER" "$TK_WORK"
}

tk_stop_pg() {
	if [ -f "$TK_WORK/pgdata/postmaster.pid" ]; then
		tk_as_user "$PG_BINDIR/pg_ctl" -D "$TK_WORK/pgdata" -m immediate stop >/dev/null 2>&1 || true
	fi
}

tk_start_pg() {
	tk_log "starting a scratch PostgreSQL on port $TK_PGPORT ($TK_WORK/pgdata)"
	tk_as_user "$PG_BINDIR/initdb" -D "$TK_WORK/pgdata" -A trust -U postgres >/dev/null
	cat >>"$TK_WORK/pgdata/postgresql.conf" <<CONF
port = $TK_PGPORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$TK_WORK/sock'
fsync = off
max_connections = 100
shared_buffers = 256MB
CONF
	tk_as_user "$PG_BINDIR/pg_ctl" -D "$TK_WORK/pgdata" -l "$TK_WORK/postgres.log" -w start >/dev/null
}

tk_psql() {
	tk_as_user "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -U postgres "$@"
}
