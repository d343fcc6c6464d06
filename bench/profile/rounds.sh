#!/usr/bin/env bash
# CPU µs per consumed message, bus and raw interleaved in one run (order alternating per round), median per side.
# usage: bash profile/rounds.sh <consume|kafka> [rounds=5] [count=100000]
# Redis: REDIS_URL (default redis://127.0.0.1:6379). Run from bench/.
set -euo pipefail
script=${1:-consume}; rounds=${2:-5}; total=${3:-100000}
node --import tsx "profile/$script.ts" fill "$total" >/dev/null
bus=(); raw=()
for ((r = 0; r < rounds; r++)); do
  if ((r % 2 == 0)); then order="bus raw"; else order="raw bus"; fi
  for mode in $order; do
    out=$(node --import tsx "profile/$script.ts" "$mode" "$total")
    v=$(awk '{print $(NF-1)}' <<<"$out")
    echo "round $r $out" >&2
    if [[ $mode == bus ]]; then bus+=("$v"); else raw+=("$v"); fi
  done
done
node --import tsx "profile/$script.ts" clean >/dev/null || true
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
mb=$(median "${bus[@]}"); mr=$(median "${raw[@]}")
echo "$script: bus ${bus[*]} | raw ${raw[*]}"
echo "$script: median cpu-us/msg bus $mb raw $mr ratio(raw/bus) $(awk -v b="$mb" -v r="$mr" 'BEGIN{printf "%.3f", r/b}')"
