#!/usr/bin/env bash
# Bundles a profile script with the current builds of the bus packages (ioredis, kafkajs stay external),
# so runs under valgrind skip tsx and two builds can be compared side by side. Run from the repo root.
# usage: bash bench/profile/bundle.sh <consume|kafka> <out.mjs>
set -euo pipefail
esbuild=$(ls -d node_modules/.pnpm/esbuild@*/node_modules/esbuild/bin/esbuild | head -1)
"$esbuild" "bench/profile/$1.ts" --bundle --platform=node --format=esm --external:ioredis --external:kafkajs --log-level=warning --banner:js="import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" --outfile="$2"
