# Shared helpers for the scripts in this folder. Source it; do not run it.

# Runs apt-get install for the Debian packages given, once. apt's own
# output goes to a log file (shown only when it fails), not the terminal.
apt_install() {
    echo "==> installing Debian packages: $* (apt's output: ${TMPDIR:-/tmp}/devicegate-apt.log)" >&2
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    local log="${TMPDIR:-/tmp}/devicegate-apt.log"
    if [ -z "${DEVICEGATE_APT_UPDATED:-}" ]; then
        $SUDO apt-get update -qq >>"$log" 2>&1 || { tail -n 20 "$log" >&2; echo "error: apt-get update failed" >&2; return 1; }
        export DEVICEGATE_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >>"$log" 2>&1 \
        || { tail -n 20 "$log" >&2; echo "error: could not install $*; install them by hand and retry" >&2; return 1; }
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null && return
    local port
    for port in $(seq 20000 29999 | shuf); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
    done
    return 1
}

# Makes sure a Postgres server is reachable for tests and exports
# DEVICEGATE_TEST_POSTGRES: the given or local server if it answers, else a
# throwaway cluster (initdb + pg_ctl) in a temp dir on a free port, stopped
# by `stop_postgres` (set up as an EXIT trap by the caller).
ensure_postgres() {
    local url="${DEVICEGATE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
    command -v psql >/dev/null || apt_install postgresql-client postgresql || return 1
    if psql "$url" -Atqc 'select 1' >/dev/null 2>&1; then
        export DEVICEGATE_TEST_POSTGRES="$url"
        echo "==> using Postgres at $url" >&2
        return 0
    fi
    echo "==> no Postgres answers at $url; starting a throwaway cluster" >&2
    local bindir
    bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
        apt_install postgresql || return 1
        bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    PG_TMP=$(mktemp -d /tmp/devicegate-pg.XXXXXX)
    local port run_as=()
    port=$(free_port) || { echo "error: no free port for Postgres" >&2; return 1; }
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home "$PG_TMP" postgres
        chown postgres "$PG_TMP"
        run_as=(runuser -u postgres --)
    fi
    "${run_as[@]}" "$bindir/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 >"$PG_TMP/initdb.log" 2>&1 \
        || { echo "error: initdb failed; see $PG_TMP/initdb.log" >&2; return 1; }
    "${run_as[@]}" "$bindir/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w \
        -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
        || { echo "error: Postgres did not start; see $PG_TMP/server.log" >&2; return 1; }
    PG_STOP=("${run_as[@]}" "$bindir/pg_ctl" -D "$PG_TMP/data" -m fast stop)
    export DEVICEGATE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres"
    echo "==> throwaway Postgres at $DEVICEGATE_TEST_POSTGRES" >&2
}

stop_postgres() {
    if [ -n "${PG_STOP:-}" ]; then "${PG_STOP[@]}" >/dev/null 2>&1 || true; rm -rf "$PG_TMP"; fi
}

# Makes sure the Rust toolchain and a C compiler (for bundled SQLite) exist.
ensure_build_tools() {
    command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from https://rustup.rs" >&2; return 1; }
    command -v cc >/dev/null || apt_install build-essential || return 1
    command -v python3 >/dev/null || apt_install python3 || true
}

# Makes sure the Mosquitto broker and its command-line clients are installed.
ensure_mosquitto() {
    local missing=()
    command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
    command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)
    if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}" || return 1; fi
}

# Makes sure Mosquitto's plugin headers are installed: the plugin does not
# need them to build, the test that checks its struct layouts does.
ensure_mosquitto_headers() {
    local missing=()
    [ -f /usr/include/mosquitto_broker.h ] || missing+=(mosquitto-dev)
    [ -f /usr/include/mosquitto.h ] || missing+=(libmosquitto-dev)
    if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}" || return 1; fi
}

# Makes sure Erlang (erl, erlc and the NIF header) is installed, for the
# VerneMQ shim's tests.
# Python's paho-mqtt and the openssl command, for the TLS tests' real clients.
ensure_tls_clients() {
    command -v openssl >/dev/null || apt_install openssl || return 1
    command -v python3 >/dev/null || apt_install python3 python3-pip || return 1
    python3 -c 'import paho.mqtt' 2>/dev/null \
        || python3 -m pip install --quiet 'paho-mqtt>=2,<3' \
        || python3 -m pip install --quiet --break-system-packages 'paho-mqtt>=2,<3'
}

ensure_erlang() {
    local missing=()
    command -v erl >/dev/null && command -v erlc >/dev/null || missing+=(erlang-base)
    [ -f /usr/lib/erlang/usr/include/erl_nif.h ] || missing+=(erlang-dev)
    if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}" || return 1; fi
}
