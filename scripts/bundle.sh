#!/usr/bin/env bash
# Builds both bundles into dist/: the action (dist/index.js, from src/index.ts) and the command
# (dist/cli.js, from src/bin.ts). ncc writes one folder per entry; the command's bundle needs the same
# assets as the action's (dockerode's protos), so only its index.js is kept, as dist/cli.js, after a
# check that it needs no asset the action's folder lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist .build/cli
npx ncc build src/index.ts -o dist --license licenses.txt --target es2022 -q
npx ncc build src/bin.ts -o .build/cli --target es2022 -q
missing=$(cd .build/cli && find . -type f ! -name index.js | while read -r f; do [ -e "../../dist/$f" ] || echo "$f"; done)
if [ -n "$missing" ]; then
  echo "dist/cli.js needs assets that dist/ lacks: $missing" >&2
  exit 1
fi
{ echo '#!/usr/bin/env node'; cat .build/cli/index.js; } > dist/cli.js
chmod +x dist/cli.js
