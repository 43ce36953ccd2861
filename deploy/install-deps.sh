#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install everything espstation's build, tests and demo need on Debian 12 (idempotent).
# Runs apt-get as root (via sudo when not root), then installs the npm packages of the test that
# drives esptool-js against the simulator. Safe to run again: installed packages are kept.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PKGS=(build-essential cmake pkg-config git
      libuv1-dev libserialport-dev libsqlite3-dev sqlite3 libcjson-dev zlib1g-dev
      libh2o-dev libssl-dev libcmocka-dev
      libqpid-proton11-dev rabbitmq-server python3-qpid-proton openssl   # IPC-CFX (daemon/cfx, tests/cfx)
      python3 python3-serial python3-jsonschema socat curl
      clang libclang-rt-dev   # libFuzzer fuzzers (tests/fuzz)
      chromium)               # dashboard browser tests (tests/web, playwright-core)
# Node.js for the esptool-js test: keep an existing installation, else Debian's.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] || [ -n "${CI:-}" ]; then
  echo "install-deps: apt-get update"
  $SUDO apt-get update -q
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
else
  echo "install-deps: all Debian packages present"
fi

# npm packages of the JavaScript tests (tests/esptooljs, tests/web), pinned by their lock files;
# `npm ci` again whenever a lock file is newer than what is installed.
for lock in tests/*/package-lock.json; do
  [ -f "$lock" ] || continue
  d=$(dirname "$lock")
  if [ ! -f "$d/node_modules/.package-lock.json" ] || [ "$lock" -nt "$d/node_modules/.package-lock.json" ]; then
    echo "install-deps: npm ci in $d"
    npm ci --prefix "$d" --no-audit --no-fund --loglevel=error
  fi
done
echo "install-deps: done"
