#!/usr/bin/env bash
# The action's main job: a report of the local Docker daemon that deletes nothing, summary printed here.
# Works on a fresh Debian machine as root (installs docker.io when dockerd is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --ignore-scripts --no-audit --no-fund
if ! command -v dockerd >/dev/null && [ -z "${DOCKER_HOST:-}" ] && [ ! -S /var/run/docker.sock ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Debian's docker.io (dockerd is missing)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io busybox-static >/dev/null
  fi
fi
[ -f dist/index.js ] || npm run --silent bundle >/dev/null
# Built once, and again only when the script or the test support it uses changed (10 s of a demo's 29).
if [ ! -f .build/demo/index.js ] ||
  [ -n "$(find scripts/demo.ts __tests__/support package-lock.json -newer .build/demo/index.js -print -quit)" ]; then
  npx ncc build scripts/demo.ts -o .build/demo -q -t
fi
node .build/demo/index.js "$@"
