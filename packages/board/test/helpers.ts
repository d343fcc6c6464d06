import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Board } from '@bus/board';
import { type Browser, chromium } from 'playwright-core';

/** Screenshots of the browser tests: gitignored, kept as CI artifacts. */
export const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));

/** Debian's chromium (`apt-get install chromium`; scripts/services.sh installs it). */
export const CHROMIUM = process.env.BUS_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** Serves `board` with node:http on a free loopback port. */
export async function serve(board: Board): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const server = createServer(board.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** What the XSS test writes into dead letters: each would set `window.__xss` if it ran. */
export const XSS = `<script>window.__xss=1</script><img src=x onerror="window.__xss=2">"onerror="window.__xss=3" '><svg onload=window.__xss=4>`;
