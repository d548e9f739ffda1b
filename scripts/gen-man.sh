#!/usr/bin/env bash
# Writes the man pages and shell completions of both binaries into
# target/man/ and target/completions/ (for packaging or a manual install),
# by running the binaries built in target/release (or $BIN_DIR):
#   cargo build --release && scripts/gen-man.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=${BIN_DIR:-target/release}
mkdir -p target/man target/completions/{bash,zsh,fish}
for b in termgate-runner termgate; do
  exe="$bin_dir/$b"
  if [ ! -x "$exe" ]; then
    echo "gen-man: $exe not found: run cargo build --release (or set BIN_DIR)" >&2
    exit 1
  fi
  "$exe" man > "target/man/$b.1"
  "$exe" completions bash > "target/completions/bash/$b"
  "$exe" completions zsh > "target/completions/zsh/_$b"
  "$exe" completions fish > "target/completions/fish/$b.fish"
done
echo "gen-man: wrote target/man/{termgate-runner,termgate}.1 and target/completions/{bash,zsh,fish}/"
