#!/usr/bin/env bash
# What devicegate costs inside the Rust brokers: the load generator against
# the example broker of each adapter, once with devicegate on an SQLite
# database and once with no authentication at all (the same broker with an
# allow-everything Hooks for ntex-mqtt, plain rumqttd for rumqttd), and
# prints a markdown table of rates and ratios.
#
#   benches/adapters.sh [CLIENTS] [MESSAGES]      (default 1000 clients, 100 messages each)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_build_tools
clients="${1:-1000}"
messages="${2:-100}"
product=LoadPk01
secret=load-secret-0001

cargo build --locked --release -q -p devicegate-benches --bin loadgen
cargo build --locked --release -q -p devicegate-cli
cargo build --locked --release -q -p devicegate-ntex --example ntex_broker
cargo build --locked --release -q -p devicegate-rumqttd --example rumqttd_broker
dg="$PWD/target/release/devicegate"
loadgen="$PWD/target/release/loadgen"
work=$(mktemp -d /tmp/devicegate-adapters.XXXXXX)
trap 'pkill -f "$work/" 2>/dev/null || true; rm -rf "$work"' EXIT

python3 - "$work" "$clients" "$secret" <<'PY'
import sys
work, n, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(f"{work}/devices.csv", "w") as f:
    f.write("device_key,secret\n")
    f.writelines(f"dev_{i},{secret}\n" for i in range(n))
PY
"$dg" --database-url "sqlite://$work/devicegate.db" product create "$product" >/dev/null
"$dg" --database-url "sqlite://$work/devicegate.db" device import "$product" "$work/devices.csv" >/dev/null 2>&1

# run NAME AUTH BROKER-BINARY ARG: start the broker (ARG: database URL or
# --no-auth), wait until a signed login is accepted, run the load, print its JSON.
run() {
    local name=$1 auth=$2 binary=$3 arg=$4 port
    port=$(free_port)
    cp "$binary" "$work/$name"
    "$work/$name" "$arg" "127.0.0.1:$port" 2>"$work/$name.log" &
    local broker=$!
    for _ in $(seq 100); do
        if "$loadgen" --port "$port" --clients 1 --messages 1 --auth "$auth" --product "$product" --secret "$secret" >/dev/null 2>&1; then break; fi
        sleep 0.2
    done
    local result
    result=$("$loadgen" --port "$port" --clients "$clients" --messages "$messages" --auth "$auth" --product "$product" --secret "$secret" 2>&1 | tail -n 1) || true
    kill "$broker"; wait "$broker" 2>/dev/null || true
    echo "$name $result"
}

results="$work/results"
{
    run ntex-no-auth none target/release/examples/ntex_broker --no-auth
    run ntex-devicegate devicegate target/release/examples/ntex_broker "sqlite://$work/devicegate.db"
    run rumqttd-no-auth none target/release/examples/rumqttd_broker --no-auth
    run rumqttd-devicegate devicegate target/release/examples/rumqttd_broker "sqlite://$work/devicegate.db"
} | tee "$results" >&2

python3 - "$results" "$clients" "$messages" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    name, _, rest = line.strip().partition(" ")
    try:
        rows.append((name, json.loads(rest)))
    except ValueError:
        rows.append((name, {"error": rest}))
print(f"\n{sys.argv[2]} clients, {sys.argv[3]} messages each, QoS 0\n")
print("| broker | connects/s | vs no auth | messages/s | vs no auth | received |")
print("|---|---|---|---|---|---|")
results = dict(rows)
for name, r in rows:
    if "error" in r:
        print(f"| {name} | failed: {r['error'][:80]} | | | | |")
        continue
    base = results.get(name.rsplit("-", 1)[0] + "-no-auth", {})
    c, m = r["connects_per_sec"], r["messages_per_sec"]
    rc = f"{c / base['connects_per_sec']:.0%}" if base.get("connects_per_sec") else "-"
    rm = f"{m / base['messages_per_sec']:.0%}" if base.get("messages_per_sec") else "-"
    print(f"| {name} | {c:,.0f} | {rc} | {m:,.0f} | {rm} | {r['received']}/{r['messages']} |")
PY
