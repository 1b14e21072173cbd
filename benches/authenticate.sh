#!/usr/bin/env bash
# POST /authenticate under load (IDENTITIES.md §4): builds release
# binaries, makes a database with N devices and one access key each,
# starts `devicegate serve` on it with a token key, and runs the load loop
# (benches/src/bin/authload.rs) with C concurrent clients for S seconds,
# on SQLite and then on Postgres. Prints requests/s and p50/p99 latency
# per backend. The clients share the machine with the service, so on a
# small machine the figures are a floor. Not a test, not a CI step.
#
#   benches/authenticate.sh [SECONDS] [CONCURRENCY] [DEVICES]   (default 10 s, 32 clients, 1000 devices)
#
# Postgres: DEVICEGATE_TEST_POSTGRES names the server (default the local
# one); a throwaway cluster is started when none answers.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
seconds="${1:-10}"
concurrency="${2:-32}"
devices="${3:-1000}"
ensure_build_tools
ensure_postgres
cargo build --locked --release -q -p devicegate-cli -p devicegate-benches --bin devicegate --bin authload
dg="$PWD/target/release/devicegate"
load="$PWD/target/release/authload"
work=$(mktemp -d /tmp/devicegate-authload.XXXXXX)
pg_db="devicegate_authload_$$"
admin_url="$DEVICEGATE_TEST_POSTGRES"
cleanup() {
    if [ -n "${serve_pid:-}" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
    stop_postgres
}
trap cleanup EXIT

# bench LABEL DATABASE_URL
bench() {
    local label="$1" url="$2" port
    echo "==> $label: $devices devices with access keys" >&2
    "$load" prepare --database-url "$url" --devices "$devices" --out "$work/$label.keys"
    "$dg" --database-url "$url" token keygen --out "$work/$label.key" >/dev/null
    port=$(free_port)
    "$dg" --database-url "$url" serve --listen "127.0.0.1:$port" --token-key "$work/$label.key" \
        2>"$work/$label.serve.log" &
    serve_pid=$!
    for _ in $(seq 1 200); do
        curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
        kill -0 "$serve_pid" 2>/dev/null || { cat "$work/$label.serve.log" >&2; return 1; }
        sleep 0.05
    done
    echo "==> $label: $concurrency clients for $seconds s" >&2
    "$load" run --url "http://127.0.0.1:$port" --keys "$work/$label.keys" --concurrency "$concurrency" \
        --seconds "$seconds" --label "$label"
    kill "$serve_pid"
    wait "$serve_pid" || true
    serve_pid=
}

bench sqlite "sqlite://$work/devicegate.db"
psql "$admin_url" -qc "CREATE DATABASE $pg_db" >/dev/null
bench postgres "${admin_url%/*}/$pg_db"
