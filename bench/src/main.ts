import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type Ctx, fmt, type Row } from './common.js';
import { bigStream } from './processes.js';
import { BULL_PREFIX, deleteKeys, REDIS_PREFIX, redisConsume, redisE2e, redisPublish } from './redis.js';
import { connectRedis } from './redis-raw.js';

const HELP = `pnpm bench [-- options]
  --only=a,b     run only these parts: redis-publish, redis-consume, redis-io, redis-e2e, big (memory, scaling, backlog), kafka, outbox, delays
  --runs=N       measured rounds per figure (default 7; 3 with --quick); sides alternate, order rotating
  --warmup=N     warm-up runs per figure (default 1)
  --quick        fewer, smaller runs (scale 0.2), to try the bench out
  --scale=F      multiply message counts by F
env: REDIS_URL (redis://127.0.0.1:6379), KAFKA_BROKERS (127.0.0.1:9092), PG_URL (postgres://postgres@127.0.0.1:5432/test)`;

const args = process.argv.slice(2).filter((a) => a !== '--');
if (args.includes('--help')) {
  console.log(HELP);
  process.exit(0);
}
const flag = (name: string): string | undefined => {
  const a = args.find((x) => x === `--${name}` || x.startsWith(`--${name}=`));
  return a === undefined ? undefined : (a.split('=')[1] ?? '');
};
const quick = flag('quick') !== undefined;
const only = flag('only')?.split(',').filter(Boolean);
const want = (name: string) => !only || only.includes(name);

const ctx: Ctx = {
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  kafkaBrokers: (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(','),
  warmup: Number(flag('warmup') ?? 1),
  runs: Number(flag('runs') ?? (quick ? 3 : 7)),
  scale: Number(flag('scale') ?? (quick ? 0.2 : 1)),
  rows: [],
  details: {},
  log: (m) => console.error(m),
};

const started = Date.now();
const admin = await connectRedis(ctx.redisUrl);
const cleanUp = async () => {
  await deleteKeys(admin, `${REDIS_PREFIX}*`);
  await deleteKeys(admin, `${BULL_PREFIX}:*`);
};
process.once('SIGINT', () => {
  console.error('bench: interrupted, cleaning up');
  void cleanUp().finally(() => process.exit(130));
});

const machine = await describeMachine();
ctx.log(`bench: ${machine.cpu} × ${machine.nproc}, ${machine.ramGiB} GiB, Node ${machine.node}, Redis ${machine.redis}, Kafka ${machine.kafka}`);
ctx.log(`bench: ${ctx.warmup} warm-up + ${ctx.runs} runs per figure, scale ${ctx.scale}`);
let failure: unknown;
try {
  if (want('redis-publish')) await redisPublish(ctx, admin);
  if (want('redis-consume')) await redisConsume(ctx, admin);
  if (want('redis-io')) {
    const { redisIoBound } = await import('./io-bound.js');
    await redisIoBound(ctx, admin);
  }
  if (want('redis-e2e')) await redisE2e(ctx);
  if (want('big')) await bigStream(ctx, admin);
  if (want('kafka')) {
    const { kafkaSuite } = await import('./kafka.js');
    await kafkaSuite(ctx);
  }
  if (want('outbox')) {
    const { outboxSuite } = await import('./outbox.js');
    await outboxSuite(ctx);
  }
  if (want('delays')) {
    const { delaySuite } = await import('./delays.js');
    await delaySuite(ctx);
  }
} catch (error) {
  failure = error;
  console.error(error);
} finally {
  await cleanUp();
  admin.disconnect();
}

const seconds = Math.round((Date.now() - started) / 1000);
const markdown = table(ctx.rows);
console.log(`\n${markdown}\n`);
console.log(`bus/raw: bus throughput ÷ raw client throughput (higher is better); for delays and memory, bus ÷ raw (lower is better). It is the median of the rounds' ratios (min–max in brackets): each round runs every side once, order rotating.`);
console.log(`${ctx.warmup} warm-up + ${ctx.runs} rounds per figure, median shown, spread = min–max of the runs; total ${seconds} s.`);
const out = fileURLToPath(new URL('../results/', import.meta.url));
mkdirSync(out, { recursive: true });
writeFileSync(
  `${out}latest.json`,
  `${JSON.stringify({ date: new Date().toISOString(), seconds, machine, warmup: ctx.warmup, runs: ctx.runs, scale: ctx.scale, rows: ctx.rows, details: ctx.details }, null, 2)}\n`,
);
writeFileSync(`${out}latest.md`, `${markdown}\n`);
console.log(`written: bench/results/latest.json, bench/results/latest.md`);
process.exitCode = failure ? 1 : 0;

function table(rows: Row[]): string {
  const lines = [
    '| section | measurement | unit | bus | raw | BullMQ | bus/raw | spread bus · raw | bus-plt | raw-plt | bus-plt/raw-plt | settings |',
    '|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const v = r.values;
    const spread = [v.bus, v.raw].filter((s) => s && s.runs.length > 1).map((s) => `${fmt(s?.min)}–${fmt(s?.max)}`);
    const settings = r.note ? `${r.settings}. ${r.note}` : r.settings;
    lines.push(
      `| ${r.section} | ${r.name} | ${r.unit} | ${fmt(v.bus?.median)} | ${fmt(v.raw?.median)} | ${fmt(v.bullmq?.median)} | ${r.ratio === undefined ? '' : `**${r.ratio.toFixed(2)}**${r.ratioSpread ? ` (${r.ratioSpread.map((x) => x.toFixed(2)).join('–')})` : ''}`} | ${spread.join(' · ')} | ${fmt(v['bus-plt']?.median)} | ${fmt(v['raw-plt']?.median)} | ${pltRatio(r)} | ${settings} |`,
    );
  }
  return lines.join('\n');
}

/** bus on @bus/kafka-platformatic ÷ raw @platformatic/kafka, for the Kafka rows that have both. */
function pltRatio(r: Row): string {
  const bus = r.values['bus-plt']?.median;
  const raw = r.values['raw-plt']?.median;
  return bus !== undefined && raw !== undefined && raw > 0 ? `**${(bus / raw).toFixed(2)}**` : '';
}

async function describeMachine() {
  const sh = (cmd: string, argv: string[]) => {
    try {
      return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
    } catch {
      return '?';
    }
  };
  const info = await admin.info('server');
  const kafkaVersion = sh('bash', ['-c', 'ls -d ~/.cache/bus-kafka/libs-* 2>/dev/null | sed "s/.*libs-//" | tail -1']);
  return {
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? '?',
    ramGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? '?',
    kafka: kafkaVersion || '?',
    kernel: sh('uname', ['-r']),
  };
}
