#!/usr/bin/env bash
# Installs the .deb packages built by scripts/package-deb.sh with dpkg, checks
# what they put on the machine, then purges them (CI runs it; needs root and
# a machine where termgate's packages are not already installed):
#   - both binaries run (`--version` says the packaged version);
#   - systemd-analyze verify accepts the installed units, which are the ones
#     in assets/systemd;
#   - the job user, its home and /etc/termgate-runner (0700) are made;
#   - man finds both pages, bash completes both commands, the example
#     configs, dashboard and rules are there, and promtool accepts the rules;
#   - installing again (an upgrade in place) works; purging removes them;
#   - lintian finds no error or warning (when installed; CI requires it).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "check-deb: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"
for pkg in termgate-runner termgate; do
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok'; then
    fail "$pkg is already installed here; this check installs and purges it: run it on a throwaway machine"
  fi
done

version=$(cargo pkgid -p termgate-runner | sed 's/.*[#@]//')
arch=$(dpkg --print-architecture)
debs=${CARGO_TARGET_DIR:-target}/debian
runner_deb=$debs/termgate-runner_${version}-1_${arch}.deb
console_deb=$debs/termgate_${version}-1_${arch}.deb
for d in "$runner_deb" "$console_deb"; do
  [ -f "$d" ] || fail "$d not found: run scripts/package-deb.sh"
done

# Debian's package checker: no error or warning. initial-upload-closes-no-bugs
# is about uploads to Debian's archive (an ITP bug), which these are not.
if command -v lintian >/dev/null 2>&1; then
  lintian --fail-on error,warning --suppress-tags initial-upload-closes-no-bugs \
    "$runner_deb" "$console_deb" || fail "lintian: the packages have errors or warnings (above)"
  echo "check-deb: lintian: ok"
elif [ "${TERMGATE_REQUIRE_LINTIAN:-}" = 1 ]; then
  fail "TERMGATE_REQUIRE_LINTIAN=1 but lintian is not installed"
fi

purge() { dpkg --purge termgate termgate-runner >/dev/null 2>&1 || true; }
trap purge EXIT

dpkg -i "$runner_deb" "$console_deb"
dpkg -i "$runner_deb" "$console_deb" >/dev/null   # again: postinst runs on an existing install

expect_version() {
  local out
  out=$("$1" --version)
  [ "$out" = "$2 $version" ] || fail "$1 --version printed '$out', not '$2 $version'"
  echo "check-deb: $1 --version: $out"
}
expect_version /usr/bin/termgate-runner termgate-runner
expect_version /usr/bin/termgate termgate

unitdir=""
for d in /usr/lib/systemd/system /lib/systemd/system; do
  [ -f "$d/termgate-runner.service" ] && unitdir=$d && break
done
[ -n "$unitdir" ] || fail "termgate-runner.service not installed: $(dpkg -L termgate-runner | grep systemd || true)"
units=()
for u in termgate-runner.service termgate-report.service termgate-report.timer; do
  [ -f "$unitdir/$u" ] || fail "$unitdir/$u not installed"
  cmp -s "$unitdir/$u" "assets/systemd/$u" || fail "$unitdir/$u differs from assets/systemd/$u"
  units+=("$unitdir/$u")
done
# Nothing printed: it exits 0 on settings it ignores, saying so.
out=$(systemd-analyze verify "${units[@]}" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify printed: $out"
echo "check-deb: systemd-analyze verify ${units[*]}: ok"
for u in termgate-runner.service termgate-report.timer; do
  if [ -e "/etc/systemd/system/multi-user.target.wants/$u" ] || [ -e "/etc/systemd/system/timers.target.wants/$u" ]; then
    fail "$u was enabled by the install (it needs configuring first)"
  fi
done

home=$(getent passwd termgate-runner | cut -d: -f6) || fail "no user termgate-runner"
[ "$home" = /home/termgate-runner ] && [ -d "$home" ] || fail "termgate-runner's home is '$home'"
[ "$(stat -c '%U' "$home")" = termgate-runner ] || fail "$home is not termgate-runner's"
[ "$(stat -c '%U %a' /etc/termgate-runner)" = "root 700" ] \
  || fail "/etc/termgate-runner is $(stat -c '%U %a' /etc/termgate-runner), not root 700"

for b in termgate-runner termgate; do
  page=$(man -w "$b") || fail "man -w $b found nothing"
  [ "$page" = "/usr/share/man/man1/$b.1.gz" ] || fail "man -w $b: $page"
  MANPAGER=cat MANWIDTH=80 man "$b" 2>/dev/null | grep -q "completions" || fail "man $b does not render its subcommands"
  bash -c ". /usr/share/bash-completion/completions/$b && complete -p $b" >/dev/null \
    || fail "bash completion for $b not loaded"
  [ -s "/usr/share/zsh/vendor-completions/_$b" ] || fail "zsh completion for $b missing"
  [ -s "/usr/share/fish/vendor_completions.d/$b.fish" ] || fail "fish completion for $b missing"
done
echo "check-deb: man pages and completions: ok"

for f in /usr/share/doc/termgate-runner/examples/config.toml /usr/share/doc/termgate/examples/console.toml \
  /usr/share/termgate-runner/grafana/termgate.json /usr/share/termgate-runner/prometheus/termgate-rules.yml; do
  [ -s "$f" ] || fail "$f not installed"
done
jq -e '.panels | length > 0' /usr/share/termgate-runner/grafana/termgate.json >/dev/null \
  || fail "the installed dashboard is not Grafana JSON"
if command -v promtool >/dev/null 2>&1; then
  (cd /usr/share/termgate-runner/prometheus && promtool check rules termgate-rules.yml >/dev/null \
    && promtool test rules termgate-rules.test.yml >/dev/null) || fail "promtool rejects the installed rules"
fi
echo "check-deb: example configs, dashboard and rules: ok"

trap - EXIT
dpkg --purge termgate termgate-runner
for f in /usr/bin/termgate-runner /usr/bin/termgate "$unitdir/termgate-runner.service" /etc/termgate-runner; do
  [ ! -e "$f" ] || fail "$f is still there after dpkg --purge"
done
echo "check-deb: $runner_deb and $console_deb install, work and purge"
