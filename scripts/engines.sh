#!/usr/bin/env bash
# Fetches the newer Docker engines the tests can run (SDP_ENGINE / SDP_ENGINES) into a cache folder, one
# subfolder per engine, unpacked from Debian's packages and never installed:
#
#   docker26    Debian 13 (trixie) docker.io 26.1 with its containerd and docker CLI
#   docker-sid  Debian unstable (sid) docker.io: whatever sid has on the day it is fetched (28.5 when
#               this was written, 29 later). The version unpacked is in the folder's VERSION file; the
#               folder is kept until you delete it (or run with SDP_ENGINE_REFRESH=1), so a cache
#               does not change under a test run.
#
# Docker 20.10 and Podman 4.3 come from the system's own packages (apt-get install docker.io podman);
# with --system this script installs those (as root) too.
#
# Usage: scripts/engines.sh [--system] [ENGINE...]    (no ENGINE: every one above)
# Cache: ${SDP_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/safe-docker-prune/engines}/ENGINE/, complete
# when ENGINE/.complete exists with the binaries listed in `required` below (then nothing is
# downloaded). Prints one line per engine: `ENGINE VERSION DIR`.
#
# The packages are fetched with a private apt configuration (own sources, lists and cache in a temporary
# folder): the system's sources and package lists are never changed. trixie's and sid's runc need a newer
# glibc (2.38+) than Debian 12 has, so it is not fetched: the engines run with bookworm's /usr/sbin/runc
# first on PATH (see __tests__/support/daemon.ts). Their containerd, dockerd and docker-init run on
# Debian 12's glibc.
set -euo pipefail

cache=${SDP_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/safe-docker-prune/engines}
mirror=${SDP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
# docker-init is a symlink to tini-static: package tini-static where the suite has one (sid), else tini
# (trixie's tini holds tini-static). docker-buildx: from Docker 23 the CLI builds with BuildKit only
# through this plugin (the tests point the CLI at it with a private DOCKER_CONFIG/cli-plugins).
packages=(docker.io containerd docker-cli docker-buildx)
# What a complete engine folder holds; a folder fetched before one of these was added is fetched again.
required=(usr/sbin/dockerd usr/bin/docker usr/bin/containerd usr/bin/docker-init
  usr/libexec/docker/cli-plugins/docker-buildx)

die() {
  echo "engines.sh: $*" >&2
  exit 1
}

suite_of() {
  case $1 in
    docker26) echo trixie ;;
    docker-sid) echo sid ;;
    *) return 1 ;;
  esac
}

install_system() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v podman >/dev/null || missing+=(podman)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  command -v openssl >/dev/null || missing+=(openssl)
  [ -x /usr/sbin/runc ] || missing+=(runc)
  [ ${#missing[@]} = 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing system packages (${missing[*]}) and not root: install them with apt-get"
  echo "engines.sh: installing ${missing[*]} (Debian)" >&2
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
    die "apt-get install ${missing[*]} failed"
}

complete() {
  [ -f "$1/.complete" ] || return 1
  local file
  for file in "${required[@]}"; do [ -x "$1/$file" ] || return 1; done
}

# fetch ENGINE: downloads and unpacks into a temporary folder next to the cache entry, then renames it
# into place, so a reader never sees half an engine. A lock keeps two runs (other checkouts share the
# cache) from fetching the same engine at once.
fetch() {
  local engine=$1 suite dest work apt
  suite=$(suite_of "$engine") || die "unknown engine '$engine' (known: docker26 docker-sid)"
  dest=$cache/$engine
  # SDP_ENGINE_REFRESH=1 fetches again (once per run) and swaps the new folder in at the end.
  if complete "$dest" && { [ "${SDP_ENGINE_REFRESH:-}" != 1 ] || [ -n "${refreshed[$engine]:-}" ]; }; then
    echo "$engine $(cat "$dest/VERSION") $dest"
    return 0
  fi
  refreshed[$engine]=1
  command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "$engine: needs apt-get and dpkg (Debian)"
  [ -r "$keyring" ] || die "$engine: $keyring is missing (package debian-archive-keyring)"

  work=$(mktemp -d "$cache/.$engine.XXXXXX")
  apt=$work/apt
  mkdir -p "$apt/sources" "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs" "$work/root"
  cat >"$apt/sources/$suite.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite
Components: main
Signed-By: $keyring
EOF
  local opts=(
    -o "Dir::Etc::SourceParts=$apt/sources" -o Dir::Etc::SourceList=/dev/null
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
    # No pinning of the host's (/etc/apt/preferences*) applies to this private source.
    -o Dir::Etc::Preferences=/dev/null -o "Dir::Etc::PreferencesParts=$apt/sources"
    # apt drops to user _apt for downloads; it could not write into root's cache folder.
    -o APT::Sandbox::User=root
  )
  echo "engines.sh: $engine: fetching ${packages[*]}, tini from Debian $suite ($mirror)" >&2
  if ! apt-get "${opts[@]}" -qq update >"$apt/update.log" 2>&1; then
    cat "$apt/update.log" >&2
    rm -rf "$work"
    die "$engine: apt-get update of Debian $suite from $mirror failed (see above)"
  fi
  local wanted=("${packages[@]}" tini)
  if apt-cache "${opts[@]}" show tini-static >/dev/null 2>&1; then wanted=("${packages[@]}" tini-static); fi
  if ! (cd "$apt/debs" && apt-get "${opts[@]}" -qq download "${wanted[@]}") >"$apt/download.log" 2>&1; then
    cat "$apt/download.log" >&2
    rm -rf "$work"
    die "$engine: apt-get download ${wanted[*]} (Debian $suite) failed (see above)"
  fi
  local deb versions=()
  for deb in "$apt"/debs/*.deb; do
    dpkg -x "$deb" "$work/root" || {
      rm -rf "$work"
      die "$engine: dpkg -x $deb failed"
    }
    versions+=("$(dpkg-deb -f "$deb" Package)=$(dpkg-deb -f "$deb" Version)")
  done
  local version
  version=$(dpkg-deb -f "$apt"/debs/docker.io_*.deb Version)
  local file
  for file in "${required[@]}"; do
    [ -x "$work/root/$file" ] || {
      rm -rf "$work"
      die "$engine: the packages of Debian $suite ($(echo "${versions[@]}")) hold no executable $file"
    }
  done
  # The engine folder: usr/ from the packages, VERSION (docker.io's Debian version), PACKAGES (all of
  # them), .complete (the stamp: suite and date).
  mkdir "$work/engine"
  mv "$work/root/usr" "$work/engine/usr"
  echo "$version" >"$work/engine/VERSION"
  printf '%s\n' "${versions[@]}" >"$work/engine/PACKAGES"
  echo "$suite $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$work/engine/.complete"
  if [ -e "$dest" ]; then mv "$dest" "$work/old"; fi
  mv "$work/engine" "$dest"
  rm -rf "$work"
  echo "$engine $version $dest"
}

system=0
engines=()
for arg in "$@"; do
  case $arg in
    --system) system=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    -*) die "unknown option $arg" ;;
    *) engines+=("$arg") ;;
  esac
done
[ ${#engines[@]} = 0 ] && engines=(docker26 docker-sid)
[ $system = 1 ] && install_system

mkdir -p "$cache"
declare -A refreshed=()
for engine in "${engines[@]}"; do
  suite_of "$engine" >/dev/null || die "unknown engine '$engine' (known: docker26 docker-sid)"
  exec {lock}>"$cache/.$engine.lock"
  flock "$lock"
  fetch "$engine"
  flock -u "$lock"
  exec {lock}>&-
done
