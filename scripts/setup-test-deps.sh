#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine (idempotent):
# promtool and the `prometheus` server (Debian's `prometheus` package: promtool
# checks /metrics; console/tests/prometheus.rs runs its own server on a free
# port), tmux to drive the console in tests, Debian's static busybox for the
# Docker executor's test image (built by scripts/build-test-image.sh when
# Docker is reachable), iptables to cut a test client's packets on loopback
# (the session server's dead-peer test), asciinema to play back the runner's
# terminal recordings (`asciinema cat` must print what was recorded),
# headless Chromium with a font to draw text in (Debian's `chromium` and
# `fonts-dejavu-core`: the HTML report is rendered to a PNG and an A4 PDF).
# systemd-analyze (Debian's `systemd` package: there already where systemd is
# the init; in a minimal container only the tool is used) to verify the
# report's timer and service in assets/systemd. jq, curl and git: the README's
# walkthrough uses jq and curl (console/tests/readme_walkthrough.rs runs it in
# a git copy of the tracked files). Two job users for the shell executor's
# `user` tests (runner/tests/e2e/job_user.rs): `termgate-job`, also in the
# supplementary group `termgate-jobgrp`, and `termgate-job2`. groff (Debian's
# `groff-base`) renders the binaries' man pages (`termgate-runner man`) in the
# tests, and `man -l` reads them as the README's install step does (`man-db`).
# dpkg-dev: cargo-deb fills the packages' Depends: with dpkg-shlibdeps
# (scripts/package-deb.sh, which CI runs, then scripts/check-deb.sh, which
# runs Debian's lintian on them); debootstrap makes the Debian image with
# systemd that scripts/check-deb-systemd.sh installs them into.
set -euo pipefail
need=()
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  need+=(prometheus)
fi
command -v tmux >/dev/null 2>&1 || need+=(tmux)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v asciinema >/dev/null 2>&1 || need+=(asciinema)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || need+=(fonts-dejavu-core)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v git >/dev/null 2>&1 || need+=(git)
command -v groff >/dev/null 2>&1 || need+=(groff-base)
command -v man >/dev/null 2>&1 || need+=(man-db)
command -v dpkg-shlibdeps >/dev/null 2>&1 || need+=(dpkg-dev)
command -v lintian >/dev/null 2>&1 || need+=(lintian)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
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
if [ "$(id -u)" = 0 ]; then
  getent group termgate-jobgrp >/dev/null || groupadd --system termgate-jobgrp
  for u in termgate-job termgate-job2; do
    id -u "$u" >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash "$u"
  done
  id -nG termgate-job | grep -qw termgate-jobgrp || usermod -a -G termgate-jobgrp termgate-job
else
  echo "setup-test-deps: not root, job users termgate-job/termgate-job2 not created (job user e2e tests skip)" >&2
fi
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  bash "$(dirname "$0")/build-test-image.sh"
else
  echo "setup-test-deps: Docker engine not reachable; Docker e2e tests need it (or TERMGATE_SKIP_DOCKER=1)" >&2
fi
