#!/usr/bin/env bash
# Soak (issue "Nothing lost, no one in", item 8): DEVICES devices for MINUTES
# minutes against a real Mosquitto with the plugin on a throwaway Postgres
# cluster, with connect/disconnect churn (300 devices connected at once by
# default), enable/disable churn through the CLI, and the database stopped
# for 15 s three times. The driver (benches/src/bin/soak.rs) checks every
# login, kick and ACL decision against the database state at that time,
# samples the broker's RSS every 10 s and at the end checks that every
# state write (online, last_seen_at, login/refusal/kick events) reached the
# database. Exits 1 on any wrong decision or lost write. Not a CI test.
#
#   benches/soak.sh [MINUTES] [DEVICES]      (default 10 minutes, 10000 devices)
#
# Extra driver options can be passed in SOAK_ARGS, e.g.
#   SOAK_ARGS="--concurrency 500 --restarts 5" benches/soak.sh 10 10000
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_build_tools
ensure_mosquitto
minutes="${1:-10}"
devices="${2:-10000}"
refresh_ms=500
product=SoakPk01
secret=soak-secret-000001
if [ -z "${SOAK_NO_BUILD:-}" ]; then
    cargo build --locked --release -q -p devicegate-benches --bin soak
    cargo build --locked --release -q -p devicegate-cli -p devicegate-mosquitto
fi

# A throwaway Postgres cluster on a free port, so that it can be stopped and
# started (the shared system Postgres is never touched).
command -v psql >/dev/null || apt_install postgresql-client postgresql
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/initdb" ] || { apt_install postgresql; bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1); }
work=$(mktemp -d /tmp/devicegate-soak.XXXXXX)
chmod 755 "$work"
# Copies of the binaries, so that a rebuild during the run changes nothing.
mkdir -p "$work/bin"
cp target/release/devicegate target/release/soak target/release/libdevicegate_mosquitto.so "$work/bin/"
dg="$work/bin/devicegate"
run_as=()
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home "$work" postgres
    mkdir -p "$work/pg" && chown postgres "$work/pg"
    run_as=(runuser -u postgres --)
else
    mkdir -p "$work/pg"
fi
pg_port=$(free_port)
"${run_as[@]}" "$bindir/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 >"$work/initdb.log" 2>&1 \
    || { echo "error: initdb failed; see $work/initdb.log" >&2; exit 1; }
pg_opts="-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=200"
pg_start="${run_as[*]} $bindir/pg_ctl -D $work/pg/data -l $work/pg/server.log -w -o '$pg_opts' start >/dev/null"
pg_stop="${run_as[*]} $bindir/pg_ctl -D $work/pg/data -m fast -w stop >/dev/null"
cleanup() {
    kill "${broker:-0}" 2>/dev/null || true
    sh -c "$pg_stop" 2>/dev/null || true
    if [ -z "${SOAK_KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT
sh -c "$pg_start" || { echo "error: Postgres did not start; see $work/pg/server.log" >&2; exit 1; }
psql "postgres://postgres@127.0.0.1:$pg_port/postgres" -qc "CREATE DATABASE soak" >/dev/null
url="postgres://postgres@127.0.0.1:$pg_port/soak"
echo "==> Postgres at $url; work dir $work" >&2

# The fleet: DEVICES devices with one secret, every 20th disabled at start,
# and a monitor principal that subscribes to all device topics.
"$dg" --database-url "$url" product create "$product" >/dev/null
{ echo "device_key,secret"; for i in $(seq 0 $((devices - 1))); do echo "dev_$i,$secret"; done; } >"$work/devices.csv"
"$dg" --database-url "$url" device import "$product" "$work/devices.csv" >/dev/null 2>"$work/import.log" \
    || { echo "error: import failed; see $work/import.log" >&2; exit 1; }
psql "$url" -qc "UPDATE devices SET enabled = 0 WHERE product_key = '$product' AND substr(device_key, 5)::int % 20 = 0"
monitor_pw=$("$dg" --database-url "$url" --json principal create monitor --allow "sub:/sys/$product/+/thing/#" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["password"])')

port=$(free_port)
mkdir -p "$work/spool"
cat >"$work/mosquitto.conf" <<CONF
per_listener_settings false
listener $port 127.0.0.1
persistence false
allow_anonymous false
max_connections -1
max_queued_messages 10000
$( [ "$(id -u)" -eq 0 ] && echo "user root" )
plugin $work/bin/libdevicegate_mosquitto.so
plugin_opt_database_url $url
plugin_opt_refresh_interval_ms $refresh_ms
plugin_opt_spool_dir $work/spool
plugin_opt_failed_logins_per_device 1000000
plugin_opt_failed_logins_per_address 1000000
plugin_opt_failed_logins_device_ceiling 1000000
log_dest file $work/mosquitto.log
log_type error
log_type warning
log_type notice
log_type information
connection_messages false
CONF
ulimit -n 65536 2>/dev/null || true
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
"$mosquitto" -c "$work/mosquitto.conf" 2>"$work/mosquitto.stderr" &
broker=$!
for _ in $(seq 300); do grep -q "registry loaded" "$work/mosquitto.log" 2>/dev/null && break; sleep 0.1; done
grep -q "registry loaded" "$work/mosquitto.log" || { echo "error: the broker did not load the registry; see $work/mosquitto.log" >&2; tail "$work/mosquitto.log" >&2; exit 1; }
sleep 1

echo "==> soak: $devices devices for $minutes min against mosquitto pid $broker on port $port" >&2
set +e
# shellcheck disable=SC2086
"$work/bin/soak" --port "$port" --broker-pid "$broker" --database-url "$url" --cli "$dg" \
    --devices "$devices" --product "$product" --secret "$secret" --monitor "monitor:$monitor_pw" \
    --seconds "$(awk -v m="$minutes" 'BEGIN { print int(m * 60) }')" --refresh-ms "$refresh_ms" \
    --db-stop "$pg_stop" --db-start "$pg_start" ${SOAK_ARGS:-}
status=$?
set -e
kill -0 "$broker" 2>/dev/null || { echo "error: the broker died; see $work/mosquitto.log" >&2; status=1; }
echo "==> broker log: $(grep -c . "$work/mosquitto.log") lines; devicegate warnings and errors:" >&2
grep -iE "devicegate.*(warn|error|cannot|drop|lost)" "$work/mosquitto.log" | sed -E 's/^[0-9]+: //' \
    | sed -E 's/[0-9]+(\.[0-9]+)?s/Ns/g; s/[0-9]{3,}/N/g' | sort | uniq -c | sort -rn | head -20 >&2 || true
exit "$status"
