#!/usr/bin/env bash
# `devicegate device import` at fleet size (issue 11 item 1): writes a CSV
# of ROWS devices (half with a secret in the file, half generated), then
# imports it with the release CLI into a new SQLite file and into a new
# Postgres database, printing the time, rows/s, the change rows written
# and the CLI's peak resident memory for each. Not a test, not a CI step.
#
#   benches/import.sh [ROWS] [BATCH]      (default 1000000 rows, batches of 5000)
#
# Postgres: DEVICEGATE_TEST_POSTGRES names the server (default the local
# one); a throwaway cluster is started when none answers.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
rows="${1:-1000000}"
batch="${2:-5000}"
ensure_build_tools
ensure_postgres
[ -x /usr/bin/time ] || apt_install time
cargo build --locked --release -q -p devicegate-cli
dg="$PWD/target/release/devicegate"
work=$(mktemp -d /tmp/devicegate-import.XXXXXX)
pg_db="devicegate_import_$$"
admin_url="$DEVICEGATE_TEST_POSTGRES"
cleanup() {
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
    stop_postgres
}
trap cleanup EXIT

echo "==> $rows rows into $work/fleet.csv" >&2
awk -v n="$rows" 'BEGIN {
    print "device_key,secret"
    for (i = 0; i < n; i++) {
        if (i % 2 == 0) printf "dev_%07d,S3cretDevice%07d\n", i, i; else printf "dev_%07d,\n", i
    }
}' >"$work/fleet.csv"
echo "    $(du -h "$work/fleet.csv" | cut -f1)" >&2

# bench LABEL DATABASE_URL COUNT_COMMAND...
bench() {
    local label="$1" url="$2"
    "$dg" --database-url "$url" product create BulkPk01 >/dev/null
    local start end
    start=$(date +%s.%N)
    /usr/bin/time -f '%M' -o "$work/$label.rss" \
        "$dg" --database-url "$url" device import BulkPk01 "$work/fleet.csv" --batch-size "$batch" \
        >"$work/$label.secrets" 2>"$work/$label.log" || { tail "$work/$label.log" >&2; exit 1; }
    end=$(date +%s.%N)
    local devices changes generated
    devices=$("$dg" --database-url "$url" --json status | python3 -c 'import json,sys; print(sum(p["total"] for p in json.load(sys.stdin)))' 2>/dev/null || echo "?")
    generated=$(($(wc -l <"$work/$label.secrets") - 1))
    awk -v l="$label" -v s="$start" -v e="$end" -v n="$rows" -v rss="$(cat "$work/$label.rss")" -v d="$devices" -v g="$generated" \
        'BEGIN { printf "%-9s %9d rows %7.1f s %9.0f rows/s  peak RSS %5.0f MiB  devices %s  generated secrets printed %d\n", l, n, e - s, n / (e - s), rss / 1024, d, g }'
}

bench sqlite "sqlite://$work/fleet.db"
echo "    change rows: $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from changes where entity='devices'\").fetchone()[0])" "$work/fleet.db")" >&2
psql "$admin_url" -qc "CREATE DATABASE $pg_db" >/dev/null
pg_url=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$admin_url" "$pg_db")
bench postgres "$pg_url"
echo "    change rows: $(psql "$pg_url" -tAc "select count(*) from changes where entity='devices'")" >&2
