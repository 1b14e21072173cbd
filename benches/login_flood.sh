#!/usr/bin/env bash
# Principal logins must never stall the broker thread (issue "Nothing lost,
# no one in", item 2): while a flood of principal-style logins runs from
# 200 loopback addresses (each under the failed-login limits), a device
# logs in every 20 ms from 127.0.0.1 and its CONNECT -> CONNACK time is
# measured. The control is an equally fast flood of CONNECTs without a
# username, which the plugin hands back at once: on 2 vCPUs Mosquitto's own
# connection handling is most of the cost, so each flood's probe latency is
# reported as a ratio to the control's (target: at most 1.5).
#
#   benches/login_flood.sh [SECONDS] [TASKS]     (default 10 s per phase, 8 flood tasks)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_build_tools
ensure_mosquitto
seconds="${1:-10}"
tasks="${2:-8}"
cargo build --locked --release -q -p devicegate-benches --bin loginflood
cargo build --locked --release -q -p devicegate-cli -p devicegate-mosquitto
dg="$PWD/target/release/devicegate"
work=$(mktemp -d /tmp/devicegate-flood.XXXXXX)
cleanup() {
    kill "${broker:-0}" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
url="sqlite://$work/devicegate.db"
"$dg" --database-url "$url" product create LoadPk01 >/dev/null
"$dg" --database-url "$url" device create LoadPk01 dev_0 --secret load-secret-0001 >/dev/null
echo "legacy-password" | "$dg" --database-url "$url" principal create legacy --password-stdin --allow 'sub:#' >/dev/null
generated=$("$dg" --database-url "$url" --json principal create backend --allow 'sub:#' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["password"])')

port=$(free_port)
cat > "$work/mosquitto.conf" <<CONF
per_listener_settings false
listener $port 127.0.0.1
persistence false
allow_anonymous false
max_connections -1
$( [ "$(id -u)" -eq 0 ] && echo "user root" )
plugin $PWD/target/release/libdevicegate_mosquitto.so
plugin_opt_database_url $url
log_dest file $work/mosquitto.log
log_type error
log_type warning
CONF
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
"$mosquitto" -c "$work/mosquitto.conf" 2>/dev/null &
broker=$!
for _ in $(seq 100); do grep -q "registry loaded" "$work/mosquitto.log" 2>/dev/null && break; sleep 0.1; done
sleep 1

results="$work/results.jsonl"
for flood in none anonymous unknown-principal wrong-password right-password generated-secret; do
    target/release/loginflood --port "$port" --flood "$flood" --tasks "$tasks" --seconds "$seconds" \
        --generated-principal "backend:$generated" | tee -a "$results"
    sleep 1
done
python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
control = next(r for r in rows if r["flood"] == "Anonymous")
print("\n| flood | flood logins/s | probe p50 µs | probe p99 µs | p50 vs control | p99 vs control |")
print("|---|---|---|---|---|---|")
for r in rows:
    print("| %s | %d | %d | %d | %.2f | %.2f |" % (
        r["flood"], r["flood_per_sec"], r["probe_p50_us"], r["probe_p99_us"],
        r["probe_p50_us"] / control["probe_p50_us"], r["probe_p99_us"] / control["probe_p99_us"]))
PY
