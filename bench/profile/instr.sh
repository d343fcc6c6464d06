#!/usr/bin/env bash
# Instructions per consumed message (valgrind callgrind; immune to other load on the machine):
# (I(big) - I(small)) / (big - small), for bus and raw. usage: bash profile/instr.sh <small> <big> [bus|raw|both]
# NODE_FLAGS: e.g. --predictable (single-threaded JIT and GC: repeatable counts).
# SCRIPT: a bundle from profile/bundle.sh (default profile/.consume.mjs).
set -euo pipefail
script=${SCRIPT:-profile/.consume.mjs}; key=${KEY:-c}
small=${1:-2000}; big=${2:-8000}; which=${3:-both}
node "$script" fill "$big" "$key" >/dev/null
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null node ${NODE_FLAGS:-} "$script" "$1" "$2" "$key" 2>&1 | awk '/Collected/ {print $4}'; }
for mode in bus raw; do
  [[ $which == both || $which == "$mode" ]] || continue
  a=$(count "$mode" "$small"); b=$(count "$mode" "$big")
  echo "$mode: I($small)=$a I($big)=$b per-msg=$(( (b - a) / (big - small) ))"
done
node "$script" clean 0 "$key" >/dev/null || true
