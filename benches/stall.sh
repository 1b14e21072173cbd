#!/usr/bin/env bash
# Measures how long devicegate's callbacks hold Mosquitto's single thread
# (DESIGN.md §6: p99.9 under 1 ms, also while the database is slow or down).
# A Postgres-backed broker with plugin_opt_stats_interval_secs 1 serves the
# load generator twice: with the database healthy, then with the database
# refusing every connection for the whole run. Prints the plugin's per-second
# callback-time lines and the worst p99.9 and max of each phase.
#
#   benches/stall.sh [CLIENTS] [MESSAGES]      (default 2000 clients, 300 messages each)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_build_tools
ensure_mosquitto
clients="${1:-2000}"
messages="${2:-300}"
product=LoadPk01
secret=load-secret-0001
cargo build --locked --release -q -p devicegate-benches --bin loadgen
cargo build --locked --release -q -p devicegate-cli -p devicegate-mosquitto
dg="$PWD/target/release/devicegate"
work=$(mktemp -d /tmp/devicegate-stall.XXXXXX)
admin="${DEVICEGATE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
db="devicegate_stall_$$"
url="${admin%/*}/$db"
cleanup() {
    kill "${broker:-0}" 2>/dev/null || true
    psql "$admin" -qc "ALTER DATABASE $db ALLOW_CONNECTIONS true" >/dev/null 2>&1 || true
    psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
python3 -c "import sys; print('device_key,secret'); [print(f'dev_{i},$secret') for i in range($clients)]" > "$work/devices.csv"
"$dg" --database-url "$url" product create "$product" >/dev/null
"$dg" --database-url "$url" device import "$product" "$work/devices.csv" >/dev/null 2>&1

port=$(free_port)
cat > "$work/mosquitto.conf" <<CONF
per_listener_settings false
listener $port 127.0.0.1
persistence false
max_queued_messages 100000
allow_anonymous false
$( [ "$(id -u)" -eq 0 ] && echo "user root" )
plugin $PWD/target/release/libdevicegate_mosquitto.so
plugin_opt_database_url $url
plugin_opt_stats_interval_secs 1
log_dest file $work/mosquitto.log
CONF
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
"$mosquitto" -c "$work/mosquitto.conf" 2>/dev/null &
broker=$!
for _ in $(seq 100); do grep -q "registry loaded" "$work/mosquitto.log" 2>/dev/null && break; sleep 0.1; done

phase() {
    local name=$1 from
    from=$(wc -l < "$work/mosquitto.log")
    target/release/loadgen --port "$port" --clients "$clients" --messages "$messages" --auth devicegate \
        --product "$product" --secret "$secret" >&2
    sleep 1.5
    echo "== $name"
    tail -n +"$from" "$work/mosquitto.log" | grep "callback time" | sed 's/^[0-9]*: devicegate: //'
    tail -n +"$from" "$work/mosquitto.log" | grep "callback time" | python3 -c '
import re, sys
rows = []
for line in sys.stdin:
    calls = re.search(r"([0-9]+) calls", line)
    wall, _, cpu = line.partition("on CPU")
    values = dict(re.findall(r"(p99\.9|max) ([0-9.]+) µs", wall))
    cpu_values = dict(re.findall(r"(p99\.9|max) ([0-9.]+) µs", cpu))
    if calls and values and cpu_values:
        rows.append((int(calls.group(1)), float(values["p99.9"]), float(values["max"]), float(cpu_values["max"])))
loaded = [r for r in rows if r[0] >= 1000]
if loaded:
    print("under load (%d intervals of >= 1000 calls): worst p99.9 %.1f µs, worst max %.1f µs"
          % (len(loaded), max(r[1] for r in loaded), max(r[2] for r in loaded)))
print("longest single callback in the phase: %.1f µs wall clock, %.1f µs on CPU"
      % (max(r[2] for r in rows), max(r[3] for r in rows)))'
}

phase "database healthy"
psql "$admin" -qc "ALTER DATABASE $db ALLOW_CONNECTIONS false" >/dev/null
psql "$admin" -qc "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$db'" >/dev/null
phase "database refusing connections"
grep -c "cannot write state changes" "$work/mosquitto.log" | sed 's/^/write attempts refused while down: /'
