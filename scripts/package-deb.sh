#!/usr/bin/env bash
# Builds the Debian packages into target/debian/ (or $CARGO_TARGET_DIR/debian/):
#   termgate-runner_VERSION-1_ARCH.deb  the runner, its systemd unit, man page,
#                                       completions, example config.toml,
#                                       Grafana dashboard and Prometheus rules
#   termgate_VERSION-1_ARCH.deb         the console, the weekly report's
#                                       service and timer, man page, completions,
#                                       example console.toml
# What goes where: [package.metadata.deb] in runner/Cargo.toml and
# console/Cargo.toml. Installs cargo-deb (pinned below) when it is missing.
#   scripts/package-deb.sh && sudo dpkg -i target/debian/*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_DEB_VERSION=3.8.0

if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
  echo "package-deb: installing cargo-deb $CARGO_DEB_VERSION" >&2
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
fi
# cargo-deb fills in Depends: from the libraries the binaries link to.
if ! command -v dpkg-shlibdeps >/dev/null 2>&1; then
  echo "package-deb: dpkg-shlibdeps not found: apt-get install dpkg-dev" >&2
  exit 1
fi

cargo build --release --locked -p termgate-runner -p termgate-console
bash scripts/gen-man.sh
for p in termgate-runner termgate-console; do
  cargo deb --no-build --locked -p "$p"
done
