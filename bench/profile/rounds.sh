#!/usr/bin/env bash
# CPU µs per consumed message, sides interleaved in one run (order rotating per round), median per side.
# usage: bash profile/rounds.sh [rounds=5] [count=100000] [side…]; a side is label:script:mode, e.g.
#   bash profile/rounds.sh 7 100000 base:profile/.consume-base.mjs:bus new:profile/.consume-new.mjs:bus raw:profile/.consume-new.mjs:raw
# (scripts: bundles from profile/bundle.sh, or `profile/consume.ts` run through tsx when it ends in .ts).
# Redis: REDIS_URL (default redis://127.0.0.1:6379); KEY: stream/topic name. Run from bench/.
set -euo pipefail
rounds=${1:-5}; total=${2:-100000}; shift 2 || true
sides=("$@"); ((${#sides[@]})) || sides=(bus:profile/consume.ts:bus raw:profile/consume.ts:raw)
key=${KEY:-rounds}
run() { if [[ $1 == *.ts ]]; then node --import tsx "$@"; else node "$@"; fi; }
first=${sides[0]#*:}; first=${first%%:*}
run "$first" fill "$total" "$key" >/dev/null
declare -A vals
for ((r = 0; r < rounds; r++)); do
  n=${#sides[@]}
  for ((s = 0; s < n; s++)); do
    side=${sides[$(((s + r) % n))]}
    label=${side%%:*}; rest=${side#*:}; script=${rest%%:*}; mode=${rest#*:}
    out=$(run "$script" "$mode" "$total" "$key")
    v=$(awk '{print $(NF-1)}' <<<"$out")
    echo "round $r $label $out" >&2
    vals[$label]="${vals[$label]:-} $v"
  done
done
run "$first" clean 0 "$key" >/dev/null || true
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
for side in "${sides[@]}"; do
  label=${side%%:*}
  # shellcheck disable=SC2086
  echo "$label: cpu-us/msg median $(median ${vals[$label]}) (runs:${vals[$label]})"
done
