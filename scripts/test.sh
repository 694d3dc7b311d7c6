#!/usr/bin/env bash
# The whole test suite: unit tests of the pure core, then integration tests that run the bundled action
# (dist/index.js, rebuilt here from src/) against private Docker daemons the tests start themselves.
# Needs root for dockerd; installs Debian's docker.io when it is missing. SDP_REQUIRE_DOCKER=1 turns a
# missing daemon into a failure instead of skipped integration tests (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ]; then npm ci --ignore-scripts; fi

if ! command -v dockerd >/dev/null || [ ! -x /bin/busybox ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing docker.io and busybox-static (Debian) for the integration tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io busybox-static >/dev/null
  else
    echo "dockerd or /bin/busybox is missing and cannot be installed here: integration tests will skip" >&2
  fi
fi

npm run --silent bundle >/dev/null
log=$(mktemp)
set +e
npx jest --ci "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One plain closing line with the counts from Jest's "Tests:" summary.
line=$(grep -E '^Tests:' "$log" | tail -n 1 || true)
count() { echo "$line" | grep -oE "[0-9]+ $1" | grep -oE '[0-9]+' || echo 0; }
echo "$(count passed) passed, $(count failed) failed, $(count skipped) skipped"
rm -f "$log"
exit $status
