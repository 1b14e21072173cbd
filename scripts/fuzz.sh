#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30) on the stable
# toolchain (RUSTC_BOOTSTRAP=1 lets it take the sanitizer flags). New
# inputs go to target/fuzz-corpus/; the seeds in fuzz/corpus/ stay as they
# are. A crash fails the run and leaves its input in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in credentials topics payloads certificates plugin_options csv_import; do
    echo "==> fuzzing $target for ${seconds}s" >&2
    mkdir -p "target/fuzz-corpus/$target"
    log="target/fuzz-$target.log"
    if ! cargo fuzz run --target-dir target/fuzz "$target" "target/fuzz-corpus/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "error: fuzz target $target failed; the crashing input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E "^Done [0-9]+ runs|stat::number_of_executed_units" "$log" >&2 || true
done
