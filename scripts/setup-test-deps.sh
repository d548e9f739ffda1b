#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine (idempotent):
# promtool (Debian's `prometheus` package) to check /metrics, the
# `prometheus` server itself for the console's --prometheus test
# (console/tests/prometheus.rs; it runs its own instance on a free port),
# tmux to drive the console in tests.
set -euo pipefail
need=()
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  need+=(prometheus)
fi
command -v tmux >/dev/null 2>&1 || need+=(tmux)
if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-test-deps: missing ${need[*]}; run as root or install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
  # The package starts its own server on :9090 where systemd runs; the tests
  # start theirs, so stop the one we just installed.
  if [[ " ${need[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1 \
    && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
fi
