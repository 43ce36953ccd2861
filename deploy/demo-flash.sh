#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Demo: start a simulated ESP32 (espsim over RFC 2217 with the auto-reset circuit, in real time:
# bytes at 115200 baud, datasheet erase and program times), flash a
# sample application with `espstation flash`, and show what was recorded. Needs a built tree
# (build/espstation, build/espsim). Leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
work=$(mktemp -d)
sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# A 256 KiB sample "application": half random, half compressible.
head -c 131072 /dev/urandom > "$work/app.bin"
head -c 131072 /dev/zero | tr '\0' 'E' >> "$work/app.bin"

coproc SIM { exec "$BUILD/espsim" --chip esp32 --rfc2217 0 --mac 24:0a:c4:12:34:56 --flash-out "$work/flash.bin" --realtime; }
sim_pid=$SIM_PID
read -r -t 10 ready <&"${SIM[0]}"
port=$(printf '%s' "$ready" | sed -n 's/.*"port":"\([^"]*\)".*/\1/p')
echo "Simulated ESP32 ready on $port"
echo
"$BUILD/espstation" flash --port "$port" --flash-size detect 0x10000 "$work/app.bin"
echo
echo "Machine-readable result (as an MES would store it):"
"$BUILD/espstation" info --port "$port" --json
