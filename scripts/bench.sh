#!/usr/bin/env bash
# Benchmark the bundled action against `docker image prune -a` on a private daemon (needs dockerd, root).
# Usage: npm run bench -- [--budget-plan] [--rounds N] [--images N] [--used N]; SDP_ACTION=path/to/index.js times another build.
set -euo pipefail
cd "$(dirname "$0")/.."
# -t: transpile only, so a type error elsewhere in the project (typecheck's job) cannot stop the bench.
npx ncc build bench/bench.ts -o .build/bench -q -t
# The bench times the bundle the runner would start; build it when missing.
[ -f dist/index.js ] || npm run bundle
node .build/bench/index.js "$@"
