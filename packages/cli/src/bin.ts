#!/usr/bin/env node
// No static import on purpose: a `bus run` (the supervisor, and each worker) can be told to stop
// from its first moment, e.g. by a deploy that changes its mind. Until the CLI installs its own
// handler (right after loading, before the config loads), a SIGTERM / SIGINT ends `bus run` cleanly
// with 0: nothing runs yet that needs draining. Node's default would be death by signal, which a
// supervisor counts as a crash.
const early = process.argv[2] === 'run';
const onEarlySignal = (signal: NodeJS.Signals) => {
  process.stderr.write(`bus: ${signal} received while starting; nothing to drain yet, exiting 0\n`);
  process.exit(0);
};
if (early) {
  process.on('SIGTERM', onEarlySignal);
  process.on('SIGINT', onEarlySignal);
  // Before this line, Node is still booting and a signal gets the kernel's default (exit 143).
  if (process.env.BUS_DEBUG) process.stderr.write(`bus: pid ${process.pid} takes signals\n`);
}

// A specifier in a variable stays a runtime import: the bundler does not inline the CLI (and hoist
// its imports above the handler).
const entry = './index.js';
(import(entry) as Promise<typeof import('./index.js')>)
  .then(({ main }) => {
    const done = main(process.argv.slice(2));
    // `main` installs the CLI's own handler synchronously, before its first await.
    process.off('SIGTERM', onEarlySignal);
    process.off('SIGINT', onEarlySignal);
    return done;
  })
  .then(
    (code) => {
      process.exitCode = code;
      // The command is over: a broker client still retrying in the background must not keep the
      // process (and the operator) waiting. Unreferenced, so a clean end exits at once as usual.
      setTimeout(() => process.exit(code), 250).unref();
    },
    (error: unknown) => {
      process.stderr.write(`bus: ${(error as Error)?.stack ?? error}\n`);
      process.exitCode = 1;
    },
  );
