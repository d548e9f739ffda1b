#!/usr/bin/env bash
# Fails when code, tests or scripts read outside the repo: a user's clone has
# nothing beside it. Fixtures live in tests/fixtures (see its README).
# Looks for: the steering folder `shared/` (by a relative path or by name),
# and absolute paths into a checkout or a developer's home (/work/, /root/,
# /Users/). Data files in tests/fixtures may hold such paths as values.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='(^|[^A-Za-z0-9_.-])shared/|\.\./shared|"/(work|root|Users)/'
hits=$(git ls-files -co --exclude-standard -- src runner console tests scripts \
  | grep -v '^scripts/check-self-contained\.sh$' \
  | xargs -r grep -nIE "$pattern" 2>/dev/null || true)
if [ -n "$hits" ]; then
  echo "check-self-contained: these lines name a path outside the repo:" >&2
  echo "$hits" >&2
  exit 1
fi
echo "check-self-contained: no file under src/ runner/ console/ tests/ scripts/ reads outside the repo"
