#!/usr/bin/env bash
# Builds both bundles into dist/: the action (dist/index.js, from src/index.ts) and the command
# (dist/cli.js, from src/bin.ts). What a run may not need (@actions/core, @actions/github, @actions/exec)
# is loaded with import() and so sits in chunk files beside them (dist/NNN.index.js), read only when
# used. ncc writes one folder per entry: the command's chunks and assets must be in dist/ already, byte
# for byte (chunk names come from their modules), so only its index.js is kept, as dist/cli.js.
# licenses.txt covers every chunk of both bundles (ncc's --license keeps only one chunk's).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist .build/cli .build/stats
mkdir -p .build/stats
npx ncc build src/index.ts -o dist --target es2022 -q --stats-out .build/stats/action.json
npx ncc build src/bin.ts -o .build/cli --target es2022 -q --stats-out .build/stats/cli.json
differ=$(cd .build/cli && find . -type f ! -name index.js | while read -r f; do cmp -s "$f" "../../dist/$f" || echo "$f"; done)
if [ -n "$differ" ]; then
  echo "dist/cli.js needs files that dist/ lacks or holds with other contents: $differ" >&2
  exit 1
fi
# ssh2 (docker-modem's ssh:// transport) ships pagent.exe for Windows' Pageant agent; the action and the
# command run on Linux and macOS, where ssh2 uses SSH_AUTH_SOCK, so no Windows binary goes into dist/.
rm -f dist/pagent.exe
{ echo '#!/usr/bin/env node'; cat .build/cli/index.js; } > dist/cli.js
chmod +x dist/cli.js
node scripts/licenses.mjs dist/licenses.txt .build/stats/action.json .build/stats/cli.json
