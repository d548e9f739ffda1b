#!/usr/bin/env bash
# Builds the Docker executor's test image with no registry: a rootfs of
# Debian's static busybox (sh and its applets as symlinks), imported with
# `docker import`. Idempotent and fast when the image exists.
#   TERMGATE_TEST_IMAGE  tag to build (default termgate-test/busybox:latest)
#   FORCE=1              rebuild even when the tag exists
set -euo pipefail
image="${TERMGATE_TEST_IMAGE:-termgate-test/busybox:latest}"
if [ "${FORCE:-0}" != 1 ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "build-test-image: $image already exists"
  exit 0
fi
bb=/bin/busybox
if ! [ -x "$bb" ] || ! file -L "$bb" 2>/dev/null | grep -q static; then
  bb=$(command -v busybox || true)
fi
if [ -z "$bb" ] || ! "$bb" --list >/dev/null 2>&1; then
  echo "build-test-image: no static busybox (apt-get install busybox-static)" >&2
  exit 1
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,etc,tmp,root,builds}
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["sh"]' \
  - "$image" >/dev/null
echo "build-test-image: built $image"
