#!/usr/bin/env bash
# The main job: build the plugin and the CLI, create an SQLite database with
# a demo product, device and backend principal, start Mosquitto with the
# plugin on a free port, and show a device logging in and publishing (read
# by the principal) and a forged login refused. Installs Mosquitto with
# apt-get where missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_build_tools
ensure_mosquitto

echo "==> building the CLI and the Mosquitto plugin (the first build takes several minutes; cargo shows its progress)"
cargo build --locked -p devicegate-cli -p devicegate-mosquitto
dg="$PWD/target/debug/devicegate"
demo="$PWD/demo"
rm -rf "$demo" && mkdir -p "$demo"
export DEVICEGATE_DATABASE_URL="sqlite://$demo/devicegate.db"

echo "==> a product, a device and a backend principal in $DEVICEGATE_DATABASE_URL"
$dg product create DemoPk01 --dialect enos
$dg device create DemoPk01 demo_dev_01 --secret DemoSecret000001
echo "backend-password" | $dg principal create backend --password-stdin --allow 'sub:/sys/+/+/thing/#'

port=$(free_port)
cat > "$demo/mosquitto.conf" <<CONF
per_listener_settings false
listener $port 127.0.0.1
allow_anonymous false
$( [ "$(id -u)" -eq 0 ] && echo "user root" )
plugin $PWD/target/debug/libdevicegate_mosquitto.so
plugin_opt_database_url $DEVICEGATE_DATABASE_URL
log_dest file $demo/mosquitto.log
persistence false
CONF
echo
echo "==> mosquitto with the plugin on port $port (config: $demo/mosquitto.conf)"
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
"$mosquitto" -c "$demo/mosquitto.conf" &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "registry loaded" "$demo/mosquitto.log" 2>/dev/null && break; sleep 0.1; done

mosquitto_sub -p "$port" -i backend-1 -u backend -P backend-password -t '/sys/+/+/thing/#' -v -C 1 -W 10 \
    > "$demo/received.txt" &
reader=$!
sleep 0.5

echo
echo "==> what the device sends (devicegate sign), and its publish"
$dg sign DemoPk01 demo_dev_01 DemoSecret000001
eval "$($dg --json sign DemoPk01 demo_dev_01 DemoSecret000001 | python3 -c \
    'import json,sys; d=json.load(sys.stdin); print("cid=%r user=%r pass=%r" % (d["client_id"], d["username"], d["password"]))')"
mosquitto_pub -p "$port" -V mqttv311 -i "$cid" -u "$user" -P "$pass" \
    -t /sys/DemoPk01/demo_dev_01/thing/measurepoint/post -m '{"params":{"measurepoints":{"temp":21.5}}}' -q 1
wait $reader || true
echo "the backend principal received: $(cat "$demo/received.txt")"

echo
echo "==> a forged login"
if mosquitto_pub -p "$port" -V mqttv311 -i "$cid" -u "$user" -P "$(printf '0%.0s' $(seq 64))" -t x -m y 2>&1; then
    echo "error: the forged login was accepted" >&2
    exit 1
fi

sleep 0.5
echo
echo "==> what the broker logged about it"
grep devicegate "$demo/mosquitto.log"
echo
echo "==> the first login activated the device"
$dg device show DemoPk01 demo_dev_01
