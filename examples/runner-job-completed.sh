#!/usr/bin/env bash
# Self-hosted GitHub Actions runner hook: runs safe-docker-prune after every job.
# In the runner's .env file (next to run.sh):
#   ACTIONS_RUNNER_HOOK_JOB_COMPLETED=/opt/safe-docker-prune/examples/runner-job-completed.sh
# The hook's output appears in the job's log under "Set up runner" / "Complete runner". A failure here
# must not fail the job that just ran: the command's exit code is reported, not passed on, and the runner
# waits for a hook with no timeout of its own, so the run is bounded by --time-limit (5 minutes by default).
#
# A disk budget: nothing is removed while the disk holding Docker's data has 20% free; below that, unused
# images older than a day go least recently used first, only until 20% is free again, so the warm cache
# the next build needs stays. Usage history is kept in $RUNNER_TOOL_CACHE/safe-docker-prune.
# SAFE_DOCKER_PRUNE_FREE_SPACE= (empty) turns the budget off: every candidate goes.
set -uo pipefail
cli="${SAFE_DOCKER_PRUNE_CLI:-$(cd "$(dirname "$0")/.." && pwd)/dist/cli.js}"
node "$cli" \
  --mode "${SAFE_DOCKER_PRUNE_MODE:-prune}" \
  --images "${SAFE_DOCKER_PRUNE_IMAGES:-unused}" \
  --keep-recent "${SAFE_DOCKER_PRUNE_KEEP_RECENT:-2}" \
  --older-than "${SAFE_DOCKER_PRUNE_OLDER_THAN:-24h}" \
  --free-space "${SAFE_DOCKER_PRUNE_FREE_SPACE-20%}" \
  --time-limit "${SAFE_DOCKER_PRUNE_TIME_LIMIT:-5m}"
code=$?
echo "safe-docker-prune exited with $code"
exit 0
