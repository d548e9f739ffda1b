#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine (idempotent):
# promtool (Debian's `prometheus` package) to check /metrics, tmux to drive
# the console in tests.
set -euo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-test-deps: missing ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi
