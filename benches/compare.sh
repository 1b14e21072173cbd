#!/usr/bin/env bash
# Runs the load generator against Mosquitto with: no authentication,
# password_file + acl_file, the dynamic-security plugin, and devicegate on
# SQLite and on Postgres, one after the other on this machine, and prints a
# markdown table with each rate and its ratio to no-auth.
#
#   benches/compare.sh [CLIENTS] [MESSAGES]      (default 1000 clients, 100 messages each)
#
# Postgres: DEVICEGATE_TEST_POSTGRES names a maintenance database where this
# user may CREATE DATABASE (default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_build_tools
ensure_mosquitto
clients="${1:-1000}"
messages="${2:-100}"
product=LoadPk01
secret=load-secret-0001

cargo build --locked --release -q -p devicegate-benches --bin loadgen
cargo build --locked --release -q -p devicegate-cli -p devicegate-mosquitto
dg="$PWD/target/release/devicegate"
loadgen="$PWD/target/release/loadgen"
plugin="$PWD/target/release/libdevicegate_mosquitto.so"
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
work=$(mktemp -d /tmp/devicegate-compare.XXXXXX)
trap 'pkill -f "$work/" 2>/dev/null || true; rm -rf "$work"' EXIT
user_line=$( [ "$(id -u)" -eq 0 ] && echo "user root" || true )

# The devices: one CSV for devicegate, one password file, one dynsec file.
python3 - "$work" "$clients" "$product" "$secret" <<'PY'
import base64, hashlib, json, os, sys
work, n, pk, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with open(f"{work}/devices.csv", "w") as f:
    f.write("device_key,secret\n")
    f.writelines(f"dev_{i},{secret}\n" for i in range(n))
with open(f"{work}/passwords", "w") as f:
    f.writelines(f"dev_{i}:{secret}\n" for i in range(n))
with open(f"{work}/acl", "w") as f:
    f.write(f"pattern readwrite /sys/{pk}/%c/#\n")
clients, roles = [], []
for i in range(n):
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, 101, 64)
    clients.append({"username": f"dev_{i}", "password": base64.b64encode(digest).decode(),
                    "salt": base64.b64encode(salt).decode(), "iterations": 101, "roles": [{"rolename": f"dev_{i}"}]})
    topic = f"/sys/{pk}/dev_{i}/#"
    roles.append({"rolename": f"dev_{i}", "acls": [
        {"acltype": t, "topic": topic, "priority": 0, "allow": True}
        for t in ("publishClientSend", "publishClientReceive", "subscribePattern")]})
json.dump({"defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False,
                                 "subscribe": False, "unsubscribe": True},
           "clients": clients, "groups": [], "roles": roles}, open(f"{work}/dynsec.json", "w"))
PY
mosquitto_passwd -U "$work/passwords"

"$dg" --database-url "sqlite://$work/devicegate.db" product create "$product" >/dev/null
"$dg" --database-url "sqlite://$work/devicegate.db" device import "$product" "$work/devices.csv" >/dev/null 2>&1
admin="${DEVICEGATE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
pg_db="devicegate_compare_$$"
pg_url="${admin%/*}/$pg_db"
have_pg=no
if psql "$admin" -qc "CREATE DATABASE $pg_db" >/dev/null 2>&1; then
    have_pg=yes
    trap 'pkill -f "$work/" 2>/dev/null || true; rm -rf "$work"; psql "$admin" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1' EXIT
    "$dg" --database-url "$pg_url" product create "$product" >/dev/null
    "$dg" --database-url "$pg_url" device import "$product" "$work/devices.csv" >/dev/null 2>&1
fi

# run NAME AUTH CONFIG-LINES: start mosquitto with the lines, run the load, print its JSON.
run() {
    local name=$1 auth=$2 conf_lines=$3 port
    port=$(free_port)
    printf 'per_listener_settings false\nlistener %s 127.0.0.1\nmax_queued_messages 100000\npersistence false\n%s\nlog_dest file %s\n%s\n' \
        "$port" "$user_line" "$work/$name.log" "$conf_lines" > "$work/$name.conf"
    "$mosquitto" -c "$work/$name.conf" &
    local broker=$!
    for _ in $(seq 100); do
        if grep -q "running" "$work/$name.log" 2>/dev/null && { [ "$auth" != devicegate ] || grep -q "registry loaded" "$work/$name.log"; }; then break; fi
        sleep 0.1
    done
    local result
    result=$("$loadgen" --port "$port" --clients "$clients" --messages "$messages" --auth "$auth" --product "$product" --secret "$secret" 2>&1 | tail -n 1) || true
    kill "$broker"; wait "$broker" 2>/dev/null || true
    echo "$name $result"
}

results="$work/results"
{
    run no-auth none "allow_anonymous true"
    run password-file password "allow_anonymous false
password_file $work/passwords
acl_file $work/acl"
    run dynamic-security password "allow_anonymous false
plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so
plugin_opt_config_file $work/dynsec.json"
    run devicegate-sqlite devicegate "allow_anonymous false
plugin $plugin
plugin_opt_database_url sqlite://$work/devicegate.db"
    if [ "$have_pg" = yes ]; then
        run devicegate-postgres devicegate "allow_anonymous false
plugin $plugin
plugin_opt_database_url $pg_url"
    fi
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
base = dict(rows).get("no-auth", {})
print(f"\n{sys.argv[2]} clients, {sys.argv[3]} messages each, QoS 0\n")
print("| broker configuration | connects/s | vs no auth | messages/s | vs no auth | received |")
print("|---|---|---|---|---|---|")
for name, r in rows:
    if "error" in r:
        print(f"| {name} | failed: {r['error'][:80]} | | | | |")
        continue
    c, m = r["connects_per_sec"], r["messages_per_sec"]
    rc = f"{c / base['connects_per_sec']:.0%}" if base.get("connects_per_sec") else "-"
    rm = f"{m / base['messages_per_sec']:.0%}" if base.get("messages_per_sec") else "-"
    print(f"| {name} | {c:,.0f} | {rc} | {m:,.0f} | {rm} | {r['received']}/{r['messages']} |")
PY
