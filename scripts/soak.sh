#!/usr/bin/env bash
# The soak of issue 20 (not a CI test): a release runner holds 1000 terminals
# for 30 minutes with churn, a coordinator restart and the slowloris and
# bad-auth attacks, then prints failed echoes, echo p99, the runner's RSS and
# descriptors at start / middle / end. Extra arguments go to termgate-soak
# (`--minutes 2` for a short try; `--help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p termgate-runner -p termgate-coordinator -p termgate-bench --bins
exec target/release/termgate-soak "$@"
