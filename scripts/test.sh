#!/usr/bin/env bash
# The whole test suite: unit tests of the pure core once, then the integration tests, which run the
# bundled action (dist/index.js, rebuilt here from src/) against private daemons the tests start
# themselves, once per engine in SDP_ENGINES (space-separated, run one after the other):
#
#   docker20               Debian 12's Docker 20.10, classic image store (the default when SDP_ENGINES is unset)
#   docker20-tls           the same on tcp://127.0.0.1:PORT with mutual TLS, no unix socket
#   docker26               Debian 13's Docker 26.1, classic store            } unpacked into a cache by
#   docker26-containerd    Docker 26.1, containerd image store               } scripts/engines.sh, fetched
#   docker-sid             Debian unstable's Docker (28.5 when written)      } here when missing
#   docker-sid-containerd  the same, containerd image store (Docker 29's default on new installs)
#   docker29               Docker 29.7.2 from the shared folder (SDP_SHARED, else ../shared), classic store
#   docker29-containerd    Docker 29.7.2 on its default containerd image store
#   podman                 Debian 12's Podman 4.3, Docker-compatible API (cannot start containers here)
#   podman5                Debian unstable's Podman 5.8, run from a sid root (mmdebstrap) through chroot
#
# e.g. `SDP_ENGINES="docker20 docker26 podman" npm test`, `SDP_ENGINES=all npm test`. Arguments go to
# every Jest run (`npm test -- action` runs the files matching "action").
# Needs root for the daemons; installs Debian's docker.io, busybox-static (and podman, openssl when an
# engine needs them, mmdebstrap for podman5) when missing. Without the shared folder the docker29 engines
# say so and skip. SDP_REQUIRE_DOCKER=1 turns a missing engine into a failure instead of
# skipped integration tests (CI sets it).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_ENGINES="docker20 docker20-tls docker26 docker26-containerd docker-sid docker-sid-containerd docker29
  docker29-containerd podman podman5"
ALL_ENGINES=$(echo $ALL_ENGINES)
engines=${SDP_ENGINES:-docker20}
[ "$engines" = all ] && engines=$ALL_ENGINES

# Integration test files an engine does not run at all, and why. Finer limits (one test needs a unix
# socket, running containers, the classic store...) are declared in the tests themselves and show as
# skipped tests named "[skipped on ENGINE: needs ...]" (see describeDocker in __tests__/support/daemon.ts).
# Each is a known engine limit, with the reason beside it.
declare -A SKIP_FILES=(
  [podman]="concurrency.itg.test.ts"
  [podman5]="concurrency.itg.test.ts"
)
declare -A SKIP_WHY=(
  # Podman answers HTTP 200 to both of two concurrent deletes of one image, so two runs at once both
  # count it as removed (99 counted for 50 removed); the images left are right. Docker answers the
  # second with 404 or 409, which the action reports as gone. Not fixable from the client side.
  [podman:concurrency.itg.test.ts]="two runs at once: Podman answers 200 to both deletes of one image, so both runs count it"
  # The same on Podman 5.8 (measured: 85 counted for 50 removed, 53 for 50 with slowed deletes).
  [podman5:concurrency.itg.test.ts]="two runs at once: Podman 5.8 still answers 200 to both deletes of one image, so both runs count it"
)

for engine in $engines; do
  case " $ALL_ENGINES " in
    *" $engine "*) ;;
    *)
      echo "SDP_ENGINES: unknown engine '$engine' (known: $ALL_ENGINES, or all)" >&2
      exit 2
      ;;
  esac
done

if [ ! -d node_modules ]; then npm ci --ignore-scripts; fi

# System packages the chosen engines need (Debian, as root).
need=()
command -v dockerd >/dev/null || need+=(docker.io)
[ -x /bin/busybox ] || need+=(busybox-static)
# A private registry on loopback, for images pinned by digest (digests.itg.test.ts).
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
[[ " $engines " == *" podman "* ]] && ! command -v podman >/dev/null && need+=(podman)
[[ " $engines " == *" docker20-tls "* ]] && ! command -v openssl >/dev/null && need+=(openssl)
[[ " $engines " == *" podman5 "* ]] && ! command -v mmdebstrap >/dev/null && need+=(mmdebstrap)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing ${need[*]} (Debian) for the integration tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "${need[*]} missing and cannot be installed here: integration tests will skip" >&2
  fi
fi
# The newer Dockers come from the engine cache (nothing is downloaded when it is already there).
folders=()
[[ " $engines " == *" docker26"* ]] && folders+=(docker26)
[[ " $engines " == *" docker-sid"* ]] && folders+=(docker-sid)
if [[ " $engines " == *" docker29"* ]]; then
  shared=${SDP_SHARED:-$PWD/../shared}
  if [ -d "$shared" ]; then
    folders+=(docker29)
  else
    echo "no shared folder at $shared (SDP_SHARED): the docker29 engines will skip (or fail with SDP_REQUIRE_DOCKER=1)" >&2
  fi
fi
[[ " $engines " == *" podman5 "* ]] && folders+=(podman5)
if [ ${#folders[@]} -gt 0 ]; then
  bash scripts/engines.sh "${folders[@]}" >/dev/null || echo "scripts/engines.sh failed: those engines will skip (or fail with SDP_REQUIRE_DOCKER=1)" >&2
fi

npm run --silent bundle >/dev/null

engine_version() {
  local cache=${SDP_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/safe-docker-prune/engines}
  case $1 in
    podman) podman --version 2>/dev/null || echo "podman missing" ;;
    docker26*) echo "docker.io $(cat "$cache/docker26/VERSION" 2>/dev/null || echo '(not fetched)')" ;;
    docker-sid*) echo "docker.io $(cat "$cache/docker-sid/VERSION" 2>/dev/null || echo '(not fetched)')" ;;
    docker29*) echo "dockerd $(cat "$cache/docker29/VERSION" 2>/dev/null || echo '(not fetched)')" ;;
    podman5) echo "podman $(cat "$cache/podman5/VERSION" 2>/dev/null || echo '(not fetched)')" ;;
    *) "${SDP_DOCKERD:-dockerd}" --version 2>/dev/null || echo "dockerd missing" ;;
  esac
}

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# run LABEL JEST-ARGS...: one Jest run, its output to LABEL.log (and shown as it comes when $show), its
# counts to LABEL.summary, its exit code to LABEL.code.
show=1
run() {
  local label=$1 started=$SECONDS code log=$logs/$1.log
  shift
  set +e
  if [ "$show" = 1 ]; then npx jest --ci "$@" 2>&1 | tee "$log"; else npx jest --ci "$@" >"$log" 2>&1; fi
  code=${PIPESTATUS[0]}
  set -e
  local line
  line=$(grep -E '^Tests:' "$log" | tail -n 1 || true)
  count() { echo "$line" | grep -oE "[0-9]+ $1" | grep -oE '[0-9]+' || echo 0; }
  printf '%-22s %3s passed, %s failed, %s skipped (%ss)%s\n' "$label:" "$(count passed)" \
    "$(count failed)" "$(count skipped)" $((SECONDS - started)) "$([ "$code" = 0 ] || echo ", exit $code")" \
    >"$logs/$label.summary"
  echo "$code" >"$logs/$label.code"
}

echo "=============== unit tests ==============="
run unit "$@" --passWithNoTests --selectProjects unit

# One engine's integration tests (its daemons are its own: private roots, sockets and containerd).
run_engine() {
  local engine=$1 ignore=() file
  shift
  echo "=============== integration tests on $engine ($(engine_version "$engine")) ==============="
  for file in ${SKIP_FILES[$engine]:-}; do
    echo "not run on $engine: $file (${SKIP_WHY[$engine:$file]:-see scripts/test.sh})"
    ignore+=(--testPathIgnorePatterns "$file")
  done
  # The user's arguments first: --selectProjects and --testPathIgnorePatterns take every value after them.
  SDP_ENGINE=$engine run "$engine" "$@" --passWithNoTests --selectProjects integration "${ignore[@]}"
}

# SDP_JOBS engines at once (default 1). Tests wait on daemons far more than they compute, so two lanes
# on two cores take little more than the longest lane. With more than one, each engine's output is shown
# whole when it ends, with a line when each starts.
jobs=${SDP_JOBS:-1}
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "SDP_JOBS: expected a number of engines at once, got '$jobs'" >&2; exit 2; }
if [ "$jobs" = 1 ]; then
  for engine in $engines; do
    echo
    run_engine "$engine" "$@"
  done
else
  show=0
  declare -A lane_of=()
  running=0
  finish_one() {
    local pid
    wait -n -p pid || true
    running=$((running - 1))
    local engine=${lane_of[$pid]}
    echo
    cat "$logs/$engine.out" "$logs/$engine.log" 2>/dev/null || true
    echo "--- $engine finished at $(date -u +%H:%M:%S): $(sed 's/^[^:]*: *//' "$logs/$engine.summary" 2>/dev/null || echo 'no result')"
  }
  for engine in $engines; do
    [ "$running" -lt "$jobs" ] || finish_one
    echo "--- $engine started at $(date -u +%H:%M:%S) ($running other engine(s) running)"
    run_engine "$engine" "$@" >"$logs/$engine.out" 2>&1 &
    lane_of[$!]=$engine
    running=$((running + 1))
  done
  while [ "$running" -gt 0 ]; do finish_one; done
fi

status=0
summary=()
for label in unit $engines; do
  if [ -f "$logs/$label.summary" ]; then
    summary+=("$(cat "$logs/$label.summary")")
    [ "$(cat "$logs/$label.code")" = 0 ] || status=1
  else
    summary+=("$(printf '%-22s did not finish' "$label:")")
    status=1
  fi
done

echo
echo "=============== summary ==============="
printf '%s\n' "${summary[@]}"
# One plain closing line with the totals of every run.
printf '%s\n' "${summary[@]}" | awk '{ p += $2; f += $4; s += $6 } END { print p " passed, " f " failed, " s " skipped" }'
exit $status
