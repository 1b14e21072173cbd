#!/usr/bin/env bash
# Long fuzzing runs, off CI (issue 10): every cargo-fuzz target for RUNS
# executions (default 10 million), one target at a time, printing one line
# per target (executions, seconds, corpus size, crash or not) to paste into
# fuzz/RESULTS.md. New inputs go to target/fuzz-corpus/TARGET (kept between
# runs, so each run starts where the last stopped); fuzz/corpus/ only holds
# the seeds. A crash stops that target, leaves its input in
# fuzz/artifacts/TARGET/ and makes the script exit 1 after the others ran.
#
#   benches/fuzz-long.sh [RUNS] [TARGET...]     (default 10000000, every target)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10000000}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(credentials topics payloads certificates plugin_options csv_import)
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build --target-dir target/fuzz >&2
failed=0
printf '%-15s %12s %8s %8s  %s\n' target executions seconds corpus result
for target in "${targets[@]}"; do
    mkdir -p "target/fuzz-corpus/$target"
    log="target/fuzz-long-$target.log"
    start=$(date +%s)
    result=ok
    if ! cargo fuzz run --target-dir target/fuzz "$target" "target/fuzz-corpus/$target" "fuzz/corpus/$target" -- \
        -runs="$runs" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
        result="CRASH, see $log and fuzz/artifacts/$target/"
        failed=1
    fi
    seconds=$(( $(date +%s) - start ))
    executions=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1)
    corpus=$(find "target/fuzz-corpus/$target" -type f | wc -l)
    printf '%-15s %12s %8s %8s  %s\n' "$target" "${executions:-?}" "$seconds" "$corpus" "$result"
done
exit "$failed"
