#!/bin/sh
# SPDX-License-Identifier: MIT
# run_fuzz.sh — one bounded libFuzzer run for ctest (label fuzz):
#   run_fuzz.sh FUZZER CORPUS_DIR REGRESS_DIR SECONDS ARTIFACT_DIR [DICT]
# Reads the checked-in corpus and regress/ inputs, writes new inputs only to a scratch directory
# (removed at the end) and crash/leak/timeout inputs to ARTIFACT_DIR (kept, for the report).
# Must not: modify the checkout.
set -eu
fuzzer=$1 corpus=$2 regress=$3 seconds=$4 artifacts=$5 dict=${6:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/estn-fuzzrun-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$artifacts" "$work/new" "$work/tmp"
set -- "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/"
[ -n "$dict" ] && set -- "$@" -dict="$dict"
set -- "$@" "$work/new"
[ -d "$corpus" ] && set -- "$@" "$corpus"
[ -d "$regress" ] && set -- "$@" "$regress"
echo "run_fuzz: $*"
# The fuzz target's own scratch files (fuzz_tmpdir) go below the run's directory too.
TMPDIR=$work/tmp "$@"
