#!/usr/bin/env bash
# Node.js lines from the npm registry (the `node` package ships the official binary), no other download.
#
#   bash scripts/node.sh 26                 install node@26 into the cache if missing; print its bin dir
#   bash scripts/node.sh 26 pnpm test       run a command with that node first on PATH
#
# The cache is $BUS_NODE_CACHE (default ~/.cache/bus-node/<major>); `npm i --prefix` puts the binary at
# <cache>/<major>/node_modules/.bin/node. pnpm, npx and every `#!/usr/bin/env node` script then use it.
set -euo pipefail
major="${1:?usage: scripts/node.sh <major> [command...]}"
shift
case "$major" in 22 | 24 | 26) ;; *) echo "node.sh: supported lines are 22, 24 and 26 (got $major)" >&2; exit 2 ;; esac
cache="${BUS_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bus-node}/$major"
bin="$cache/node_modules/.bin"
if ! "$bin/node" --version >/dev/null 2>&1; then
  echo "node.sh: installing node@$major from the npm registry into $cache" >&2
  mkdir -p "$cache"
  # Its own package.json, so npm never walks up into a workspace.
  [ -f "$cache/package.json" ] || echo '{"name":"bus-node-cache","private":true}' >"$cache/package.json"
  npm install --prefix "$cache" --no-audit --no-fund --loglevel=error "node@$major" >&2
fi
if [ $# -eq 0 ]; then
  echo "$bin"
  exit 0
fi
export PATH="$bin:$PATH"
exec "$@"
