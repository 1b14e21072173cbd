#!/usr/bin/env bash
# The Debian packages and the README's operator quickstart, tested for real
# (issue 12): the quickstart block of README.md is run exactly as written —
# apt-get, scripts/package.sh, dpkg -i of both packages, the packaged CLI
# making the SQLite database, the packaged configuration copied into place,
# devicegate doctor, Mosquitto restarted, a device connecting with the
# command `devicegate sign` prints — then what the packages installed is
# checked, a forged login must fail, and the packages are purged again.
#
# What is real: dpkg installs into / and purges from it; the packaged binaries,
# plugin and configuration are the ones used; Mosquitto is Debian's, started
# from Debian's stock mosquitto.conf (include_dir /etc/mosquitto/conf.d).
# What is kept apart, so this machine's own Mosquitto is not disturbed: the
# quickstart runs in private mount and network namespaces (unshare), where
# /etc/mosquitto, /var/lib/mosquitto, /var/log/mosquitto and /run/mosquitto
# are temporary folders and port 1883 is the namespace's own; and
# `systemctl restart mosquitto` is carried out by the test (a shell
# function that restarts the broker from that configuration), since a
# namespace has no service manager of its own.
#
# The packages are built from the debug build the other tests made
# (DEVICEGATE_PACKAGE_PROFILE=dev: same files, stripped, no second build);
# set DEVICEGATE_PACKAGE_PROFILE=release to test the release packages.
# Needs root (dpkg, unshare).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

fail() { echo "error: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "this test installs packages with dpkg and uses unshare: run it as root"
for package in devicegate devicegate-mosquitto; do
    if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q ' installed'; then
        fail "the package $package is installed on this machine; this test installs and purges it, so remove it first (dpkg --purge $package)"
    fi
done
[ ! -e /var/lib/devicegate ] || fail "/var/lib/devicegate exists (a device database?); this test creates and removes it, so move it away first"

ensure_build_tools
ensure_mosquitto
command -v openssl >/dev/null || apt_install openssl
command -v unshare >/dev/null || apt_install util-linux
command -v ip >/dev/null || apt_install iproute2
command -v readelf >/dev/null || apt_install binutils

export DEVICEGATE_PACKAGE_PROFILE="${DEVICEGATE_PACKAGE_PROFILE:-dev}"
echo "==> Debian packages (profile $DEVICEGATE_PACKAGE_PROFILE)" >&2
# Built once out here, where cargo-deb can be installed; the quickstart's own
# ./scripts/package.sh then finds everything built.
./scripts/package.sh >/dev/null

work=$(mktemp -d /tmp/devicegate-packages.XXXXXX)
cleanup() {
    for package in devicegate devicegate-mosquitto; do
        if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'installed\|config-files'; then
            dpkg --purge "$package" >/dev/null 2>&1 || true
        fi
    done
    rm -rf /var/lib/devicegate "$work"
}
trap cleanup EXIT

# The quickstart, from the README, as the operator reads it.
awk '/<!-- quickstart: run as written by scripts\/test-packages.sh -->/ {found=1; next}
     found && /^```sh$/ {inside=1; next}
     inside && /^```$/ {exit}
     inside {print}' README.md >"$work/quickstart.sh"
[ -s "$work/quickstart.sh" ] || fail "README.md has no quickstart block after its <!-- quickstart … --> marker"
# Its apt-get line needs the network, which the namespace below has not:
# it runs here first, so that inside it finds everything installed.
grep '^apt-get install' "$work/quickstart.sh" >"$work/apt.sh" || fail "the quickstart has no apt-get line"
echo "==> the quickstart's apt-get line (output: $work/apt.log)" >&2
bash -euo pipefail "$work/apt.sh" >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "the quickstart's apt-get line failed"; }

# Debian's stock /etc/mosquitto/mosquitto.conf (mosquitto 2.0.11-1.2, bookworm).
mkdir -p "$work/etc/conf.d" "$work/lib" "$work/log" "$work/run"
cat >"$work/etc/mosquitto.conf" <<'CONF'
# Place your local configuration in /etc/mosquitto/conf.d/
#
# A full description of the configuration file is at
# /usr/share/doc/mosquitto/examples/mosquitto.conf.example

pid_file /run/mosquitto/mosquitto.pid

persistence true
persistence_location /var/lib/mosquitto/

log_dest file /var/log/mosquitto/mosquitto.log

include_dir /etc/mosquitto/conf.d
CONF
chown mosquitto:mosquitto "$work/lib" "$work/log" "$work/run"

cat >"$work/inside.sh" <<'INSIDE'
set -euo pipefail
work="$1"
mount --make-rprivate /
mount --bind "$work/etc" /etc/mosquitto
mount --bind "$work/lib" /var/lib/mosquitto
mount --bind "$work/log" /var/log/mosquitto
mkdir -p /run/mosquitto
mount --bind "$work/run" /run/mosquitto
ip link set lo up

# `systemctl restart mosquitto`, carried out in this namespace (exported to
# the quickstart's shell). Like systemd it returns once the broker runs;
# the plugin loads its registry just after (logins before that are refused
# with "registry not loaded yet"), which the next command an operator
# types never beats, so this waits for the plugin's "registry loaded" line.
systemctl() {
    [ "$*" = "restart mosquitto" ] || { echo "test: systemctl $* is not expected here" >&2; return 1; }
    if [ -s /run/mosquitto/mosquitto.pid ]; then
        kill "$(cat /run/mosquitto/mosquitto.pid)" 2>/dev/null || true
        sleep 1
    fi
    mosquitto -c /etc/mosquitto/mosquitto.conf -d
    for _ in $(seq 1 100); do
        if grep -q 'registry loaded' /var/log/mosquitto/mosquitto.log 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "test: the plugin did not load its registry within 10 s; Mosquitto's log:" >&2
    cat /var/log/mosquitto/mosquitto.log >&2
    return 1
}
export -f systemctl
stop_broker() {
    if [ -s /run/mosquitto/mosquitto.pid ]; then kill "$(cat /run/mosquitto/mosquitto.pid)" 2>/dev/null || true; fi
}
trap stop_broker EXIT

echo "==> the README's quickstart, as written" >&2
if ! bash -euxo pipefail "$work/quickstart.sh" >"$work/quickstart.log" 2>&1; then
    cat "$work/quickstart.log" >&2
    echo "--- mosquitto.log" >&2
    cat /var/log/mosquitto/mosquitto.log >&2 || true
    echo "error: the README's quickstart failed (its output is above)" >&2
    exit 1
fi
log=/var/log/mosquitto/mosquitto.log
check() { echo "    ok: $1" >&2; }
expect() { echo "error: $1" >&2; echo "--- quickstart output" >&2; cat "$work/quickstart.log" >&2; echo "--- mosquitto.log" >&2; cat "$log" >&2; exit 1; }

grep -q 'devicegate registry loaded from sqlite:///var/lib/devicegate/devicegate.db devices=1' "$log" \
    || expect "the packaged plugin did not load the packaged database"
check "the packaged plugin loaded /var/lib/devicegate/devicegate.db"
grep -q '^no problem found' "$work/quickstart.log" || expect "devicegate doctor did not report 'no problem found'"
check "devicegate doctor: no problem found"
export DEVICEGATE_DATABASE_URL=sqlite:///var/lib/devicegate/devicegate.db
seen=
for _ in $(seq 1 50); do
    if devicegate --json device show Ab3dEf9h dev_0001 | grep -q '"last_address": *"127.0.0.1'; then seen=1; break; fi
    sleep 0.2
done
[ -n "$seen" ] || expect "devicegate device show does not record the device's login"
check "the device logged in (device show: last address 127.0.0.1)"

# A forged login must fail through the same broker, or the quickstart proves nothing.
if devicegate sign Ab3dEf9h dev_0001 forged-secret-0000000 --host 127.0.0.1 --port 1883 | tail -n 1 | sh >/dev/null 2>&1; then
    expect "a login signed with a wrong secret was accepted"
fi
for _ in $(seq 1 20); do grep -q 'login refused.*reason=bad signature' "$log" && break; sleep 0.1; done
grep -q 'login refused.*reason=bad signature' "$log" || expect "no 'login refused … bad signature' line for the forged login"
check "a forged login is refused and logged"
stop_broker

echo "==> what the packages installed" >&2
[ -f /usr/lib/devicegate/libdevicegate_mosquitto.so ] || expect "no /usr/lib/devicegate/libdevicegate_mosquitto.so"
[ "$(command -v devicegate)" = /usr/bin/devicegate ] || expect "devicegate is not /usr/bin/devicegate"
for binary in /usr/bin/devicegate /usr/lib/devicegate/libdevicegate_mosquitto.so; do
    if readelf -S "$binary" | grep -qE '\.(debug_(info|line|str)|symtab) '; then expect "$binary is not stripped (it has symbols or debug information)"; fi
done
check "binaries stripped"
[ "$(stat -c %U:%G:%a /var/lib/devicegate)" = mosquitto:mosquitto:750 ] || expect "/var/lib/devicegate is $(stat -c %U:%G:%a /var/lib/devicegate), not mosquitto:mosquitto:750"
check "/var/lib/devicegate owned by mosquitto, 0750"
for file in /usr/share/man/man1/devicegate.1.gz /usr/share/man/man1/devicegate-device-create.1.gz \
    /usr/share/bash-completion/completions/devicegate /usr/share/zsh/vendor-completions/_devicegate \
    /usr/share/fish/vendor_completions.d/devicegate.fish /usr/lib/systemd/system/devicegate.service \
    /etc/default/devicegate /etc/mosquitto/conf.d/devicegate.conf.example; do
    [ -s "$file" ] || expect "the packages did not install $file"
done
zcat /usr/share/man/man1/devicegate-serve.1.gz | grep -q 'token\\-key' || expect "man devicegate-serve does not document --token-key"
grep -q 'devicegate__subcmd__device__subcmd__create' /usr/share/bash-completion/completions/devicegate \
    || expect "the bash completion does not know devicegate device create"
[ ! -e /etc/systemd/system/multi-user.target.wants/devicegate.service ] || expect "devicegate.service was enabled by the package"
check "man pages, completions, the systemd unit (not enabled), /etc/default/devicegate, the configuration example"

echo "==> purge" >&2
rm /etc/mosquitto/conf.d/devicegate.conf
dpkg --purge devicegate devicegate-mosquitto >"$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; expect "dpkg --purge failed"; }
grep -q 'holds your device database; kept' "$work/purge.log" || expect "purge did not say it kept the device database"
[ -f /var/lib/devicegate/devicegate.db ] || expect "purge deleted the device database"
rm -rf /var/lib/devicegate
for file in /usr/bin/devicegate /usr/lib/devicegate /usr/lib/systemd/system/devicegate.service \
    /etc/mosquitto/conf.d/devicegate.conf.example /etc/default/devicegate; do
    [ ! -e "$file" ] || expect "$file is still there after purge"
done
check "purged: files gone, the device database kept and named"
INSIDE

echo "==> installing, running and purging them in private namespaces" >&2
unshare --mount --net --fork bash "$work/inside.sh" "$work"
echo "==> packages and quickstart: passed" >&2
