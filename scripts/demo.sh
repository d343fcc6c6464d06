#!/usr/bin/env bash
# `pnpm demo`: builds what the live-tasks example needs, quietly (the build log is shown only when the
# build fails), then runs the example on the in-memory transport. Extra arguments go to the example
# (e.g. `pnpm demo --transport redis`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! TURBO_TELEMETRY_DISABLED=1 pnpm exec turbo run build --filter=@bus/example-live-tasks... >"$log" 2>&1; then
  cat "$log" >&2
  echo "demo: the build failed (log above)" >&2
  exit 1
fi
pnpm --silent --filter @bus/example-live-tasks start "$@"
