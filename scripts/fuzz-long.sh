#!/usr/bin/env bash
# The long fuzz pass (docs/fuzzing.md): every property test (the tests
# named `fuzz_*`, in every crate) run over and over with many cases each and
# fresh random seeds, until FUZZ_MINUTES (default 10) have passed. CI runs
# the same tests once with proptest's default of 256 cases
# (`cargo test --workspace`).
#
#   scripts/fuzz-long.sh                      # 10 minutes, 4096 cases a test a round
#   FUZZ_MINUTES=60 PROPTEST_CASES=20000 nice -n 19 scripts/fuzz-long.sh
#
# A failure prints proptest's minimal failing input; proptest also records
# its seed under `proptest-regressions/` (commit that file: every later run
# tries the case first). Exit status: 0 when no round failed.
set -uo pipefail
cd "$(dirname "$0")/.."

minutes=${FUZZ_MINUTES:-10}
cases=${PROPTEST_CASES:-4096}
log_dir=${FUZZ_LOG_DIR:-target/fuzz-long}
mkdir -p "$log_dir"
# Doc tests have no properties; --lib --bins --tests is every other target.
targets=(--workspace --lib --bins --tests)

echo "fuzz-long: building the test targets"
cargo test "${targets[@]}" --no-run -q || exit 2

start=$SECONDS
deadline=$((start + minutes * 60))
rounds=0 tests=0 failed=0 failed_rounds=0
while ((SECONDS < deadline)); do
    rounds=$((rounds + 1))
    log="$log_dir/round-$rounds.log"
    PROPTEST_CASES=$cases cargo test "${targets[@]}" -q -- fuzz_ >"$log" 2>&1
    status=$?
    # `test result: ok. 6 passed; 0 failed; ...` once per test binary.
    passed=$(grep -oE '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
    nfail=$(grep -oE '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
    tests=$((tests + passed + nfail))
    failed=$((failed + nfail))
    if ((status != 0)); then
        failed_rounds=$((failed_rounds + 1))
        echo "fuzz-long: round $rounds FAILED ($nfail tests; log $log):"
        grep -E 'minimal failing input|panicked at|^    [a-z_:]+fuzz_' "$log" | head -20
        ((nfail == 0)) && tail -20 "$log"
    else
        rm -f "$log"
    fi
    echo "fuzz-long: round $rounds: $passed passed, $nfail failed, $((SECONDS - start)) s so far"
done
elapsed=$((SECONDS - start))
echo "fuzz-long: $(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+dirty')"
echo "fuzz-long: $rounds rounds in ${elapsed} s; $tests property-test runs of $cases cases each" \
    "= $((tests * cases)) cases; $failed failed test runs in $failed_rounds rounds"
((failed_rounds == 0))
