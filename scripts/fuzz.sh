#!/usr/bin/env bash
# Fuzzes Zombi's decoders (fuzz/fuzz_targets/) with cargo-fuzz (libFuzzer) for SECS seconds
# each: producer envelopes and bulk bodies, internal MessagePack batches, table names.
# Every input kept in fuzz/regressions/<target>/ runs first and must pass. A crash found now
# is copied there (commit it with the fix) and the run fails.
set -euo pipefail
secs="${1:-60}"
cd "$(dirname "$0")/../fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# cargo-fuzz passes a few unstable flags to rustc; the machine's stable toolchain may use
# them. No sanitizer: the code under test forbids `unsafe`, so what there is to find are
# panics, hangs and wrong answers, which libFuzzer catches itself.
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/zombi-target}/fuzz"
status=0
for target in producer_single producer_bulk internal_batch table_name; do
    mkdir -p "corpus/$target" "regressions/$target" "artifacts/$target"
    shopt -s nullglob
    kept=(regressions/"$target"/*)
    shopt -u nullglob
    if [ ${#kept[@]} -gt 0 ]; then
        echo "== $target: ${#kept[@]} regression input(s)"
        cargo fuzz run -s none "$target" "${kept[@]}"
    fi
    echo "== $target: fuzzing for ${secs}s"
    if ! cargo fuzz run -s none "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$target/"; then
        status=1
        for crash in artifacts/"$target"/*; do
            cp "$crash" "regressions/$target/"
            echo "kept $crash as regressions/$target/$(basename "$crash"): fix it and commit it" >&2
        done
    fi
done
exit "$status"
