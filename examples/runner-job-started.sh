#!/usr/bin/env bash
# Self-hosted GitHub Actions runner hook: makes room before every job, within a hard time bound.
# In the runner's .env file (next to run.sh):
#   ACTIONS_RUNNER_HOOK_JOB_STARTED=/opt/safe-docker-prune/examples/runner-job-started.sh
# The runner waits for this hook with no timeout of its own, and a non-zero exit fails the job: so the run
# is bounded by --time-limit (90 s by default) and this script always exits 0. When the bound or the daemon
# stopped it, or the budget could not be met, it says so as a warning in the job's log.
#
# Watermarks: nothing is removed while the disk holding Docker's data has 10% free; below that, unused
# images older than a day go least recently used first until 20% is free, so the next jobs do not cross
# the line again at once. Usage history is kept in $RUNNER_TOOL_CACHE/safe-docker-prune.
set -uo pipefail
cli="${SAFE_DOCKER_PRUNE_CLI:-$(cd "$(dirname "$0")/.." && pwd)/dist/cli.js}"
free="${SAFE_DOCKER_PRUNE_FREE_SPACE-10%}"
# No line (SAFE_DOCKER_PRUNE_FREE_SPACE= empty: every candidate goes) means no target either.
target="${SAFE_DOCKER_PRUNE_FREE_SPACE_TARGET-$([ -n "$free" ] && echo 20%)}"
node "$cli" \
  --mode "${SAFE_DOCKER_PRUNE_MODE:-prune}" \
  --images "${SAFE_DOCKER_PRUNE_IMAGES:-unused}" \
  --keep-recent "${SAFE_DOCKER_PRUNE_KEEP_RECENT:-2}" \
  --older-than "${SAFE_DOCKER_PRUNE_OLDER_THAN:-24h}" \
  --free-space "$free" \
  --free-space-target "$target" \
  --time-limit "${SAFE_DOCKER_PRUNE_TIME_LIMIT:-90s}"
code=$?
echo "safe-docker-prune exited with $code"
if [ "$code" -ne 0 ]; then
  echo "warning: safe-docker-prune did not finish its clean-up before this job (exit $code, see above); the job goes on"
fi
exit 0
