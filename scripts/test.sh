#!/usr/bin/env bash
# Runs every test: unit, property and integration tests against real SQLite
# files, a real Postgres (the local server, or a throwaway cluster this
# script starts), a real Mosquitto, a real Erlang VM and the system C
# compiler, plus a build of the decision modules without the database layer. Installs what it needs with apt-get where missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
trap stop_postgres EXIT

ensure_build_tools
ensure_mosquitto
ensure_mosquitto_headers
ensure_tls_clients
ensure_erlang
ensure_postgres

echo "==> decision modules build without sqlx or tokio" >&2
cargo build --locked -p devicegate --no-default-features

echo "==> the CLI, the Mosquitto plugin and the C library the integration tests run" >&2
cargo build --locked -p devicegate-cli -p devicegate-mosquitto -p devicegate-ffi

echo "==> cargo test --workspace" >&2
cargo test --locked --workspace

echo "==> a panic injected into each C entry point and each Mosquitto callback is caught (test-only feature)" >&2
cargo test --locked -p devicegate-ffi --features panic-injection --lib panic_injection
cargo test --locked -p devicegate-mosquitto --features panic-injection --test panic_injection

echo "==> the Debian packages and the README's operator quickstart: dpkg -i, a device logs in, purge (as root)" >&2
./scripts/test-packages.sh
