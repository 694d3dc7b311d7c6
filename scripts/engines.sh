#!/usr/bin/env bash
# Fetches the newer Docker engines the tests can run (SDP_ENGINE / SDP_ENGINES) into a cache folder, one
# subfolder per engine, unpacked from Debian's packages and never installed:
#
#   docker26    Debian 13 (trixie) docker.io 26.1 with its containerd and docker CLI
#   docker-sid  Debian unstable (sid) docker.io: whatever sid has on the day it is fetched (28.5 when
#               this was written, 29 later). The version unpacked is in the folder's VERSION file; the
#               folder is kept until you delete it (or run with SDP_ENGINE_REFRESH=1), so a cache
#               does not change under a test run.
#   docker29    Docker Engine 29.7.2's dockerd and docker-proxy, which no Debian suite ships, from the
#               shared folder's engines/docker-29.7.2.tar.xz (checked against its sha256), with
#               docker-sid's containerd, shim, docker-init, docker CLI (28.5 talks to 29) and buildx beside
#               them (docker-sid is fetched first). The shared folder: SDP_SHARED, else ../shared beside
#               the repository (CI puts it there); without it docker29 is reported missing.
#   podman5     Debian unstable's Podman (5.8 when written) in a root of its own made with mmdebstrap
#               (sid's podman needs glibc 2.38; Debian 12 has 2.36). The tests run it through chroot.
#
# Docker 20.10 and Podman 4.3 come from the system's own packages (apt-get install docker.io podman);
# with --system this script installs those (as root) too.
#
# Usage: scripts/engines.sh [--system] [ENGINE...]    (no ENGINE: every one above but docker29 when the
#        shared folder is absent)
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
repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${SDP_SHARED:-$repo/../shared}
docker29_archive=docker-29.7.2.tar.xz
# From the shared folder's engines/README.md (moby's tag docker-v29.7.2, built as that README says).
docker29_sha256=1ca9fcd325bf232c4b74dba4ca6c85527001c8c023209e1b78e9b5c09e954232
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

known="docker26 docker-sid docker29 podman5"

suite_of() {
  case $1 in
    docker26) echo trixie ;;
    docker-sid | podman5) echo sid ;;
    *) return 1 ;;
  esac
}

# What each engine's complete folder holds (the binaries checked before it counts as fetched).
required_of() {
  case $1 in
    podman5) echo root/usr/bin/podman root/usr/bin/crun root/usr/bin/conmon ;;
    *) echo "${required[@]}" ;;
  esac
}

install_system() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v podman >/dev/null || missing+=(podman)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
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
  for file in $(required_of "$(basename "$1")"); do [ -x "$1/$file" ] || return 1; done
}

# discard DIR: removes a folder that may hold a chroot root, unmounting first whatever the tests mounted
# below it (/proc, /sys, /dev of a podman5 root) and never crossing into another file system.
discard() {
  local mount
  [ -e "$1" ] || return 0
  awk -v d="$1/" 'index($2 "/", d) == 1 { print length($2), $2 }' /proc/self/mounts | sort -rn |
    cut -d' ' -f2- | while read -r mount; do umount -l "$mount" 2>/dev/null || true; done
  rm -rf --one-file-system "$1"
}

# put_in_place WORK DEST: swaps the finished folder WORK/engine in as DEST (the old one, if any, removed).
put_in_place() {
  if [ -e "$2" ]; then mv "$2" "$1/old"; fi
  mv "$1/engine" "$2"
  discard "$1"
}

# fetch_docker29: Docker 29.7.2's daemon from the shared folder, docker-sid's helpers and CLI beside it.
fetch_docker29() {
  local dest=$cache/docker29 archive=$shared/engines/$docker29_archive work sid sum
  [ -r "$archive" ] || die "docker29: $archive is missing (the shared folder: SDP_SHARED, else $repo/../shared)"
  sum=$(sha256sum "$archive" | cut -d' ' -f1)
  [ "$sum" = "$docker29_sha256" ] || die "docker29: $archive has sha256 $sum, not $docker29_sha256"
  sid=$cache/docker-sid
  complete "$sid" || die "docker29: docker-sid (its containerd, tini and CLI) is not fetched"
  work=$(mktemp -d "$cache/.docker29.XXXXXX")
  mkdir -p "$work/engine/usr/sbin"
  tar -xJf "$archive" -C "$work/engine/usr/sbin" dockerd docker-proxy || {
    discard "$work"
    die "docker29: unpacking $archive failed"
  }
  # Hard links: the same files as docker-sid's (a refreshed docker-sid gets new files, these stay).
  mkdir -p "$work/engine/usr/libexec/docker"
  cp -al "$sid/usr/bin" "$work/engine/usr/bin"
  cp -al "$sid/usr/libexec/docker/cli-plugins" "$work/engine/usr/libexec/docker/cli-plugins"
  local file
  for file in "${required[@]}"; do
    [ -x "$work/engine/$file" ] || {
      discard "$work"
      die "docker29: no executable $file after unpacking"
    }
  done
  echo "29.7.2" >"$work/engine/VERSION"
  {
    echo "dockerd=29.7.2 ($docker29_archive sha256 $docker29_sha256)"
    grep -v '^docker.io=' "$sid/PACKAGES"
  } >"$work/engine/PACKAGES"
  echo "$docker29_archive $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$work/engine/.complete"
  put_in_place "$work" "$dest"
  echo "docker29 29.7.2 $dest"
}

# fetch_podman5: a Debian unstable root with podman, crun and iptables (mmdebstrap, ~60 s); the tests
# bind /proc, /sys and /dev into it and run podman there through chroot.
fetch_podman5() {
  local dest=$cache/podman5 work version
  command -v mmdebstrap >/dev/null || die "podman5: mmdebstrap is missing (apt-get install mmdebstrap, or --system)"
  work=$(mktemp -d "$cache/.podman5.XXXXXX")
  echo "engines.sh: podman5: making a Debian sid root with podman ($mirror)" >&2
  # The mirror's unstable Release file may be past its Valid-Until date.
  if ! mmdebstrap --quiet --variant=minbase --aptopt='Acquire::Check-Valid-Until "false"' \
    --include=podman,ca-certificates,crun,iptables sid "$work/root" "deb $mirror sid main" \
    >"$work/mmdebstrap.log" 2>&1; then
    cat "$work/mmdebstrap.log" >&2
    discard "$work"
    die "podman5: mmdebstrap of Debian sid from $mirror failed (see above)"
  fi
  local file
  for file in $(required_of podman5); do
    [ -x "$work/$file" ] || {
      discard "$work"
      die "podman5: the sid root holds no executable ${file#root}"
    }
  done
  version=$(chroot "$work/root" dpkg-query -W -f='${Version}' podman)
  mkdir "$work/engine"
  mv "$work/root" "$work/engine/root"
  echo "$version" >"$work/engine/VERSION"
  chroot "$work/engine/root" dpkg-query -W -f='${Package}=${Version}\n' podman crun conmon netavark \
    containers-common libc6 >"$work/engine/PACKAGES" 2>/dev/null || true
  echo "sid $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$work/engine/.complete"
  put_in_place "$work" "$dest"
  echo "podman5 $version $dest"
}

# fetch ENGINE: downloads and unpacks into a temporary folder next to the cache entry, then renames it
# into place, so a reader never sees half an engine. A lock keeps two runs (other checkouts share the
# cache) from fetching the same engine at once.
fetch() {
  local engine=$1 suite dest work apt
  dest=$cache/$engine
  # SDP_ENGINE_REFRESH=1 fetches again (once per run) and swaps the new folder in at the end.
  if complete "$dest" && { [ "${SDP_ENGINE_REFRESH:-}" != 1 ] || [ -n "${refreshed[$engine]:-}" ]; }; then
    echo "$engine $(cat "$dest/VERSION") $dest"
    return 0
  fi
  refreshed[$engine]=1
  case $engine in
    docker29) fetch_docker29 && return ;;
    podman5) fetch_podman5 && return ;;
  esac
  suite=$(suite_of "$engine") || die "unknown engine '$engine' (known: $known)"
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
  put_in_place "$work" "$dest"
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
if [ ${#engines[@]} = 0 ]; then
  engines=(docker26 docker-sid podman5)
  if [ -d "$shared" ]; then engines+=(docker29); else echo "engines.sh: no shared folder at $shared: docker29 not fetched" >&2; fi
fi
[ $system = 1 ] && install_system

mkdir -p "$cache"
declare -A refreshed=()
for engine in "${engines[@]}"; do
  case " $known " in *" $engine "*) ;; *) die "unknown engine '$engine' (known: $known)" ;; esac
done
# docker29 takes docker-sid's containerd, tini and CLI: docker-sid is fetched first.
if [[ " ${engines[*]} " == *" docker29 "* ]]; then
  others=()
  for engine in "${engines[@]}"; do [ "$engine" = docker-sid ] || others+=("$engine"); done
  engines=(docker-sid "${others[@]}")
fi
for engine in "${engines[@]}"; do
  exec {lock}>"$cache/.$engine.lock"
  flock "$lock"
  fetch "$engine"
  flock -u "$lock"
  exec {lock}>&-
done
