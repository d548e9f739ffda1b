#!/usr/bin/env bash
# The packages under a real systemd, as README's "Running in production"
# has an operator use them: a Debian container (a debootstrapped rootfs,
# imported as termgate-test/systemd:bookworm the first time) boots systemd,
# gets the .deb packages of scripts/package-deb.sh with dpkg -i, and then,
# against a local coordinator (fake GitLab) on the host's loopback:
#   - `termgate-runner register` then `systemctl enable --now termgate-runner`:
#     a job runs, as the job user termgate-runner, which cannot read
#     config.toml;
#   - `systemctl reload` re-reads config.toml (SIGHUP);
#   - `systemctl stop` during a job is graceful (SIGQUIT): the job finishes
#     and succeeds;
#   - `dpkg -i` again (an upgrade) leaves the running runner alone;
#   - `systemctl start termgate-report.service` writes last week's report
#     in its sandbox (DynamicUser, ProtectSystem=strict, a system-call
#     filter), which systemd-analyze verify cannot tell, from the journal
#     exported as README says (today's report counts the jobs above);
#   - `dpkg --purge` keeps the registered config.toml.
# Needs root, Docker (a container with CAP_SYS_ADMIN, for systemd's
# namespaces), debootstrap and Debian's mirror (first run only), and the
# coordinator (built if missing). CI runs it after scripts/check-deb.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "check-deb-systemd: $*" >&2; exit 1; }
say() { echo "check-deb-systemd: $*"; }
IMAGE=termgate-test/systemd:bookworm
target=${CARGO_TARGET_DIR:-target}
version=$(cargo pkgid -p termgate-runner | sed 's/.*[#@]//')
arch=$(dpkg --print-architecture)
runner_deb=$target/debian/termgate-runner_${version}-1_${arch}.deb
console_deb=$target/debian/termgate_${version}-1_${arch}.deb
for d in "$runner_deb" "$console_deb"; do
  [ -f "$d" ] || fail "$d not found: run scripts/package-deb.sh"
done
docker info >/dev/null 2>&1 || fail "the Docker engine is not reachable"

# The image: Debian with systemd as init, from Debian's mirror.
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null 2>&1 || fail "debootstrap not installed (scripts/setup-test-deps.sh)"
  rootfs=$(mktemp -d)
  say "building $IMAGE with debootstrap (once)"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$rootfs" \
    http://deb.debian.org/debian >/dev/null || fail "debootstrap failed"
  tar -C "$rootfs" -c . | docker import - "$IMAGE" >/dev/null
  rm -rf "$rootfs"
fi

coordinator=$target/debug/termgate-coordinator
[ -x "$coordinator" ] || cargo build -q -p termgate-coordinator
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
api=http://127.0.0.1:$port
name=termgate-systemd-check-$$
coord_pid=""
# TERMGATE_KEEP_CONTAINER=1 keeps the container, to look inside after a failure.
cleanup() {
  [ -z "$coord_pid" ] || kill "$coord_pid" 2>/dev/null || true
  if [ -n "${TERMGATE_KEEP_CONTAINER:-}" ]; then
    echo "check-deb-systemd: kept container $name (docker exec -it $name bash)" >&2
  else
    docker rm -f "$name" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
"$coordinator" --listen "127.0.0.1:$port" --registration-token unused >"$target/check-deb-systemd-coordinator.log" 2>&1 &
coord_pid=$!

# systemd as PID 1: the host's network (the coordinator is on its loopback),
# the cgroup tree writable, CAP_SYS_ADMIN and no seccomp profile for the
# units' namespaces (ProtectSystem=, PrivateTmp=, …).
docker run -d -t --name "$name" -e container=docker --network host \
  --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:rw --cgroupns=host \
  --cap-add SYS_ADMIN --security-opt seccomp=unconfined "$IMAGE" /lib/systemd/systemd >/dev/null
box() { docker exec "$name" bash -c "$1"; }
# Polls COMMAND once a second for up to SECONDS.
wait_for() {
  local what=$1 seconds=$2 cmd=$3 i
  for ((i = 0; i < seconds; i++)); do
    if eval "$cmd" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  fail "$what: not within ${seconds}s"
}
wait_for "systemd boots" 60 "box 'systemctl is-system-running | grep -Eq \"running|degraded\"'"
wait_for "the coordinator listens" 30 "curl -sf $api/admin/jobs"

box 'mkdir -p /root/debs'
docker cp "$runner_deb" "$name:/root/debs/" && docker cp "$console_deb" "$name:/root/debs/"
box 'dpkg -i /root/debs/*.deb >/dev/null' || fail "dpkg -i"
token=$(curl -sf -X POST -H 'content-type: application/json' -d '{}' "$api/admin/runners" | jq -r .token)
box "termgate-runner register -n -c /etc/termgate-runner/config.toml --url $api --token $token \
      --executor shell --name \"\$(hostname)\"" >/dev/null 2>&1 || fail "register"
box 'systemctl enable --now termgate-runner' 2>/dev/null || fail "systemctl enable --now termgate-runner"
wait_for "the runner is active" 30 "box 'systemctl is-active termgate-runner'"
say "installed, registered and started: $(box 'systemctl is-active termgate-runner')"

# Queues a job; prints its id.
queue() {
  curl -sf -X POST -H 'content-type: application/json' -d "$1" "$api/admin/jobs" | jq -r '.ids[0]'
}
state() { curl -sf "$api/admin/jobs/$1" | jq -r .state; }
job=$(queue '{"name":"who","script":["id -un","cat /etc/termgate-runner/config.toml || echo config-unreadable"]}')
wait_for "job $job ends" 60 "[ \"\$(state $job)\" = success ] || [ \"\$(state $job)\" = failed ]"
trace=$(curl -sf "$api/admin/jobs/$job/trace")
[ "$(state "$job")" = success ] || fail "job $job: $(state "$job"): $trace"
grep -qx 'termgate-runner' <<<"$trace" || fail "job $job did not run as termgate-runner: $trace"
grep -qx 'config-unreadable' <<<"$trace" || fail "job $job could read config.toml: $trace"
say "a job ran as termgate-runner and could not read config.toml"

journal() { box 'journalctl -u termgate-runner -t termgate-runner -o cat' | jq -r '.msg // empty'; }
loaded=$(journal | grep -c '^Configuration loaded$' || true)
box 'systemctl reload termgate-runner'
wait_for "reload re-reads config.toml" 20 "[ \$(journal | grep -c '^Configuration loaded\$') -gt $loaded ]"
say "systemctl reload re-read config.toml"

job=$(queue '{"name":"drain","script":["sleep 5","echo drained"]}')
wait_for "job $job runs" 30 "[ \"\$(state $job)\" = running ]"
# (Bounded here: the unit itself would wait up to TimeoutStopSec, 65 min.)
box 'timeout 120 systemctl stop termgate-runner' || fail "systemctl stop did not finish within 120 s"
[ "$(state "$job")" = success ] || fail "job $job is $(state "$job") after a graceful stop"
box 'systemctl is-active termgate-runner' >/dev/null && fail "the runner still runs after systemctl stop"
journal | grep -q '^Starting graceful shutdown' || fail "the stop was not graceful: $(journal | tail -5)"
say "systemctl stop waited for the running job, which succeeded"

box 'systemctl start termgate-runner'
pid=$(box 'systemctl show -p MainPID --value termgate-runner')
box 'dpkg -i /root/debs/*.deb >/dev/null' || fail "dpkg -i again"
[ "$(box 'systemctl show -p MainPID --value termgate-runner')" = "$pid" ] \
  || fail "installing again restarted the runner"
say "installing again left the running runner alone"

box 'mkdir -p /etc/termgate /var/log/termgate
    journalctl -u termgate-runner -t termgate-runner -o cat > /var/log/termgate/runner.log
    chgrp adm /var/log/termgate/runner.log && chmod 0640 /var/log/termgate/runner.log
    printf "[[runners]]\nname = \"box\"\nmetrics_url = \"http://127.0.0.1:9/metrics\"\nlogs = [\"/var/log/termgate/runner*.log\"]\n" > /etc/termgate/console.toml
    chgrp adm /etc/termgate/console.toml && chmod 0640 /etc/termgate/console.toml'
box 'systemctl enable --now termgate-report.timer' 2>/dev/null || fail "enable termgate-report.timer"
box 'systemctl start termgate-report.service' \
  || fail "termgate-report.service: $(box 'systemctl status --no-pager termgate-report.service; journalctl -u termgate-report -o cat' || true)"
box 'head -1 /var/lib/termgate/reports/report-$(date -u +%F).md' | grep -q '^# Runner report' \
  || fail "no report in /var/lib/termgate/reports: $(box 'ls -l /var/lib/termgate/reports/' || true)"
# The service's period ends at today's midnight; today's lines, read as
# the README says to export them: the jobs and starts above.
totals=$(box 'termgate report -c /etc/termgate/console.toml --since 1d --format json 2>/dev/null' \
  | jq -c '[.totals.jobs.current, .totals.starts.current, .inputs.unparsed_lines]')
[ "$totals" = "[2,2,0]" ] \
  || fail "the report over the journal's export: [jobs, starts, unparsed] = $totals, not [2,2,0]"
say "termgate-report.service wrote last week's report in its sandbox; today's reads 2 jobs, 2 starts"

box 'timeout 120 dpkg --purge termgate termgate-runner >/dev/null' || fail "dpkg --purge"
box '[ -s /etc/termgate-runner/config.toml ]' || fail "purge removed the registered config.toml"
say "ok: the packages install, run and stop under systemd as README says"
