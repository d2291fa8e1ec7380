#!/usr/bin/env bash
# Brings a fresh clone to a runnable state and does nothing needless on the
# second run: Debian packages, npm dependencies, the native build (BPF probes,
# skeletons, addon), the TypeScript build. Called by `npm start` and `npm test`.
#   --test        also install what the tests need (Python web stacks, load tools, browser)
#   --build-only  skip package installs
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*" >&2; }
fail() { printf '[setup] FAILED: %s\n' "$*" >&2; exit 1; }

want_test=0; build_only=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --build-only) build_only=1 ;;
    *) fail "unknown option $arg" ;;
  esac
done

# What building and running the agent needs.
BUILD_PKGS=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev cmake make g++ pkg-config libcap2-bin)
# What the tests and benchmarks need: real Python services, load, a browser; for the
# package test (npm run package, dpkg -i): dpkg-shlibdeps, strace, systemd-analyze; for the
# sender-role tests: supervisord, and podman with runc (crun 1.8 refuses a hybrid cgroup layout).
TEST_PKGS=(python3.11 gunicorn python3-flask uvicorn python3-uvicorn python3-starlette python3-fastapi
           uwsgi uwsgi-plugin-python3 python3-hypercorn daphne python3-celery
           wrk chromium procps iproute2 util-linux libbpf-tools prometheus nftables dpkg-dev strace systemd supervisor
           podman runc)

missing_pkgs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

install_pkgs() {
  local missing
  missing=$(missing_pkgs "$@")
  [ -z "$missing" ] && return 0
  say "installing Debian packages: $(echo $missing | tr '\n' ' ')"
  [ "$(id -u)" = 0 ] || fail "installing packages needs root (apt-get install $missing)"
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -f /var/lib/apt/periodic/premortem-updated ] || [ -n "$(find /var/lib/apt/lists -maxdepth 0 -mmin +720 2>/dev/null)" ]; then
    apt-get update -qq || fail "apt-get update"
    mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/premortem-updated
  fi
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/tmp/premortem-apt.log 2>&1 \
    || { tail -20 /tmp/premortem-apt.log >&2; fail "apt-get install $missing (log: /tmp/premortem-apt.log)"; }
}

if [ "$build_only" = 0 ]; then
  install_pkgs "${BUILD_PKGS[@]}"
  [ "$want_test" = 1 ] && install_pkgs "${TEST_PKGS[@]}"
fi

# npm dependencies: install when missing or when package.json / the lock changed.
stamp_dir=node_modules/.premortem
if [ ! -f "$stamp_dir/deps" ] || [ package.json -nt "$stamp_dir/deps" ] \
   || { [ -f package-lock.json ] && [ package-lock.json -nt "$stamp_dir/deps" ]; }; then
  say "installing npm dependencies"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error >&2 || fail "npm ci"
  else npm install --no-audit --no-fund --loglevel=error >&2 || fail "npm install"; fi
  mkdir -p "$stamp_dir" && touch "$stamp_dir/deps"
fi

# Native build: BPF objects, skeletons and the addon, when any source is newer.
addon=build/Release/premortem.node
if [ ! -f "$addon" ] || [ -n "$(find bpf native CMakeLists.txt package.json -newer "$addon" -type f 2>/dev/null | head -1)" ]; then
  say "building BPF probes and the native addon (cmake-js)"
  npx cmake-js compile --log-level warn >&2 || fail "native build (see the compiler output above)"
fi

# TypeScript: agent, bench and viewer server code to dist/.
ts_stamp=dist/.built
if [ ! -f "$ts_stamp" ] || [ -n "$(find agent bench viewer proto tsconfig.json -newer "$ts_stamp" -type f 2>/dev/null | head -1)" ]; then
  say "compiling TypeScript"
  npx tsc -p tsconfig.json >&2 || fail "TypeScript compile"
  # The code shared with the viewer must use neither Node nor the DOM.
  npx tsc -p proto/tsconfig.json >&2 || fail "shared code in proto/ uses a Node or browser API"
  if [ -f scripts/build-viewer.js ]; then node scripts/build-viewer.js >&2 || fail "viewer bundle"; fi
  touch "$ts_stamp"
fi
