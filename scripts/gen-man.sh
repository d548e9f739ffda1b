#!/usr/bin/env bash
# Writes the man pages and shell completions of both binaries beside them,
# into man/ and completions/{bash,zsh,fish}/ of the release directory
# (target/release, or $CARGO_TARGET_DIR/release, or $BIN_DIR), by running
# the binaries built there; the man pages also gzipped, as the Debian
# packages install them (scripts/package-deb.sh):
#   cargo build --release && scripts/gen-man.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
mkdir -p "$bin_dir/man" "$bin_dir"/completions/{bash,zsh,fish}
for b in termgate-runner termgate; do
  exe="$bin_dir/$b"
  if [ ! -x "$exe" ]; then
    echo "gen-man: $exe not found: run cargo build --release (or set BIN_DIR)" >&2
    exit 1
  fi
  "$exe" man > "$bin_dir/man/$b.1"
  # -n: no name or time stamp in the header, so the same page gives the same bytes.
  gzip -9nc "$bin_dir/man/$b.1" > "$bin_dir/man/$b.1.gz"
  "$exe" completions bash > "$bin_dir/completions/bash/$b"
  "$exe" completions zsh > "$bin_dir/completions/zsh/_$b"
  "$exe" completions fish > "$bin_dir/completions/fish/$b.fish"
done
echo "gen-man: wrote $bin_dir/man/{termgate-runner,termgate}.1{,.gz} and $bin_dir/completions/{bash,zsh,fish}/"
