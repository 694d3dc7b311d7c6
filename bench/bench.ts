// Benchmark: the action's whole prune run (node start to summary written) against the engine's own
// `image prune -a -f` on identical fleets, per engine and fleet size, several rounds, side by side.
//   npm run bench -- [--engines docker20,docker-sid-containerd,podman] [--sizes 500,5000] [--rounds 3]
//                    [--users root,runner]   (runner: the action as an unprivileged user in the docker group)
//                    [--sides action,engine,report]  (what each round times; the ratios need the engine's)
//   npm run bench -- --budget-plan      (only the budget's planning time for 5,000 images, no daemon)
// Each fleet is loaded once per engine (cached across runs in ~/.cache/safe-docker-prune/bench), its data
// root saved, and restored before every timed run, so each run meets the same daemon state, freshly
// started. Per round: the action's prune, the engine's prune, and the action's report (dry run), in an
// order that rotates. bench/measure.cjs, preloaded into the action's node, records the cold start
// (node start to the first connection), the API calls made and node's peak memory.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { accountDir, accountSocket, runnerAccount, type RunnerAccount } from '../__tests__/support/account';
import { runAction, repoRoot } from '../__tests__/support/action';
import { benchBudgetPlan } from './budget-plan';
import {
  ENGINES,
  removeDir,
  startDaemon,
  type EngineName,
  type PrivateDaemon,
} from '../__tests__/support/daemon';
import {
  clearDaemon,
  createContainers,
  imageState,
  loadImages,
  scaleFleet,
} from '../__tests__/support/fleet';

interface Options {
  engines: EngineName[];
  sizes: number[];
  rounds: number;
  /** Who runs the action: root, and/or the runner's account (which reads every image through the API). */
  users: ('root' | 'runner')[];
  /** What each round times: the action's prune, the engine's prune, the action's report (default: all). */
  sides: Side[];
}

const SIDES = ['action', 'engine', 'report'] as const;
type Side = (typeof SIDES)[number];

/** One timed run of the action, with what bench/measure.cjs saw. */
interface ActionSample {
  ms: number;
  coldStartMs?: number;
  peakMb?: number;
  apiCalls?: number;
  calls?: Record<string, number>;
  timings: Record<string, number>;
  summaryBytes: number;
  reclaimed?: string;
}

interface Case {
  engine: EngineName;
  /** Who ran the action: `root`, or the runner's account. */
  user: string;
  version: string;
  store: string;
  images: number;
  removable: number;
  buildMs: number;
  prune: ActionSample[];
  report: ActionSample[];
  engineMs: number[];
  /** The action's prune over the engine's prune, and its report over the engine's prune, per round. */
  ratios: number[];
  reportRatios: number[];
  notes: string[];
}

// A fixed "now" makes every build of the fleet give the same image IDs.
const NOW = Date.parse('2025-01-01T00:00:00Z');
const CACHE = path.join(homedir(), '.cache/safe-docker-prune/bench');
const MEASURE = path.join(repoRoot(), 'bench/measure.cjs');

function parseArgs(argv: string[]): Options {
  const opts: Options = {
    engines: ['docker20'],
    sizes: [500],
    rounds: 3,
    users: ['root'],
    sides: [...SIDES],
  };
  const usage =
    'usage: bench [--engines a,b|all] [--sizes 500,5000] [--rounds N] [--users root,runner] ' +
    '[--sides action,engine,report] | --budget-plan';
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    const value = argv[++i] ?? '';
    if (key === '--users') {
      const users = value.split(',').filter(Boolean);
      if (users.length === 0 || users.some((u) => u !== 'root' && u !== 'runner'))
        throw new Error(`--users: "${value}" is not a list of root and runner\n${usage}`);
      opts.users = [...new Set(users)] as Options['users'];
    } else if (key === '--sides') {
      const sides = value.split(',').filter(Boolean);
      if (sides.length === 0 || sides.some((x) => !(SIDES as readonly string[]).includes(x)))
        throw new Error(`--sides: "${value}" is not a list of ${SIDES.join(', ')}\n${usage}`);
      opts.sides = SIDES.filter((x) => sides.includes(x));
    } else if (key === '--engines') {
      const names =
        value === 'all'
          ? Object.keys(ENGINES).filter((n) => n !== 'docker20-tls')
          : value.split(',').filter(Boolean);
      const unknown = names.filter((n) => !(n in ENGINES) || n === 'docker20-tls');
      if (unknown.length || names.length === 0) {
        throw new Error(
          `--engines: unknown ${unknown.join(', ') || '(none)'}; one of ${Object.keys(ENGINES).join(', ')}\n${usage}`,
        );
      }
      opts.engines = names as EngineName[];
    } else if (key === '--sizes') {
      const sizes = value.split(',').map(Number);
      if (sizes.some((n) => !Number.isInteger(n) || n < 10))
        throw new Error(`--sizes: "${value}" is not a list of sizes ≥ 10\n${usage}`);
      opts.sizes = sizes;
    } else if (key === '--rounds') {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1)
        throw new Error(`--rounds: "${value}" is not a whole number ≥ 1\n${usage}`);
      opts.rounds = n;
    } else {
      throw new Error(`unknown argument "${key}"\n${usage}`);
    }
  }
  return opts;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--budget-plan')) {
    console.log('budget plan of 5,000 images (synthetic inventory), median of 5:');
    for (const [name, ms] of Object.entries(benchBudgetPlan(5000))) console.log(`  ${name}: ${ms} ms`);
    return;
  }
  const opts = parseArgs(args);
  const cases: Case[] = [];
  const account = opts.users.includes('runner') ? runnerAccount() : undefined;
  if (opts.users.includes('runner') && !account)
    throw new Error('--users runner: only root can make and become the runner account');
  for (const engine of opts.engines) {
    for (const size of opts.sizes) {
      for (const user of opts.users) {
        const result = await benchCase(
          engine,
          size,
          opts.rounds,
          opts.sides,
          user === 'runner' ? account : undefined,
        );
        cases.push(result);
        printCase(result);
      }
    }
  }
  console.log('\n' + markdownTable(cases, opts.rounds));
  await mkdir(path.join(repoRoot(), '.build'), { recursive: true });
  const file = path.join(repoRoot(), '.build/bench-results.json');
  await writeFile(
    file,
    JSON.stringify({ at: new Date().toISOString(), rounds: opts.rounds, cases }, null, 2),
  );
  console.log(`\nall samples: ${file}`);
}

/** The fleet of `size` images (a fifth in use by created containers), saved once per engine. */
async function seededFleet(engine: EngineName, size: number) {
  const fleet = scaleFleet({ images: size, used: Math.floor(size / 5), now: NOW });
  const key = createHash('sha256').update(JSON.stringify(fleet)).digest('hex').slice(0, 12);
  const seed = path.join(CACHE, `${engine}-${size}-${key}`);
  // The daemon always runs in this folder, so paths recorded in its data root (Podman's) stay right.
  const dir = `/tmp/sdp-bench-${engine}`;
  const meta = path.join(`${seed}.json`);
  if (!existsSync(meta)) {
    await removeDir(dir).catch(() => undefined);
    console.log(`${engine}: loading a fleet of ${size} images (once; saved in ${seed})...`);
    const daemon = await startDaemon('bench', engine, { dir, keepFiles: true });
    if (!daemon) throw new Error(`${engine} cannot run here (the benchmark needs it, and root)`);
    const started = performance.now();
    let keep: string[];
    try {
      await clearDaemon(daemon.docker);
      const ids = await loadImages(daemon.docker, fleet.images);
      await createContainers(daemon.docker, fleet.containers);
      keep = [...new Set(fleet.containers.map((c) => ids.get(c.image)!))].sort();
    } finally {
      await daemon.stop();
    }
    const buildMs = Math.round(performance.now() - started);
    await rm(seed, { recursive: true, force: true });
    await mkdir(CACHE, { recursive: true });
    copy(path.join(dir, 'data'), `${seed}.tmp`);
    await rename(`${seed}.tmp`, seed);
    await writeFile(meta, JSON.stringify({ keep, buildMs }));
  }
  const { keep, buildMs } = JSON.parse(await readFile(meta, 'utf8')) as { keep: string[]; buildMs: number };
  return { fleet, seed, dir, keep, buildMs };
}

function copy(from: string, to: string): void {
  const r = spawnSync('cp', ['-a', '--reflink=auto', from, to], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cp -a ${from} ${to} failed: ${r.stderr}`);
}

/** The saved fleet, restored and served by a freshly started daemon. */
async function restored(engine: EngineName, seed: string, dir: string): Promise<PrivateDaemon> {
  await removeDir(dir).catch(() => undefined);
  await mkdir(dir, { recursive: true });
  copy(seed, path.join(dir, 'data'));
  const daemon = await startDaemon('bench', engine, { dir, keepFiles: true });
  if (!daemon) throw new Error(`${engine} cannot run here`);
  return daemon;
}

async function benchCase(
  engine: EngineName,
  size: number,
  rounds: number,
  sides: Side[],
  account?: RunnerAccount,
): Promise<Case> {
  const { fleet, seed, dir, keep, buildMs } = await seededFleet(engine, size);
  const result: Case = {
    engine,
    user: account?.name ?? 'root',
    version: '',
    store: ENGINES[engine].imageStore,
    images: fleet.images.length,
    removable: fleet.images.length - keep.length,
    buildMs,
    prune: [],
    report: [],
    engineMs: [],
    ratios: [],
    reportRatios: [],
    notes: [],
  };
  for (let r = 0; r < rounds; r++) {
    // Rotate the order, so that no side always runs first (or right after another's I/O).
    const order = sides.map((_, i) => sides[(i + r) % sides.length]);
    const round: Partial<Record<Side, number>> = {};
    for (const side of order) {
      const daemon = await restored(engine, seed, dir);
      try {
        result.version = `${daemon.version} (API ${daemon.apiVersion})`;
        const count = (await daemon.docker.listImages({ all: true })).length;
        if (count !== fleet.images.length)
          throw new Error(`${engine}: the restored fleet has ${count} images, not ${fleet.images.length}`);
        process.stdout.write(`${engine} ${size} round ${r + 1}: ${side}... `);
        if (side === 'engine') {
          const started = performance.now();
          const out = await daemon.cli(['image', 'prune', '-a', '-f'], { timeoutMs: 1_800_000 });
          const ms = Math.round(performance.now() - started);
          if (out.code !== 0) throw new Error(`${engine} image prune -a failed (${out.code}): ${out.stderr}`);
          round.engine = ms;
          result.engineMs.push(ms);
          console.log(`${seconds(ms)}`);
          const left = (await imageState(daemon.docker)).map((i) => i.id).sort();
          if (JSON.stringify(left) !== JSON.stringify(keep)) {
            const note = `the engine's prune left ${left.length} images where ${keep.length} are in use`;
            if (!result.notes.includes(note)) result.notes.push(note);
          }
        } else {
          const sample = await timeAction(daemon, side === 'action' ? 'prune' : 'report', account);
          round[side] = sample.ms;
          (side === 'action' ? result.prune : result.report).push(sample);
          console.log(
            `${seconds(sample.ms)} (cold start ${sample.coldStartMs ?? '?'} ms, ${sample.apiCalls ?? '?'} API calls, ` +
              `peak ${sample.peakMb ?? '?'} MB; ${Object.entries(sample.timings)
                .map(([k, v]) => `${k} ${v}`)
                .join(', ')})`,
          );
          const left = (await imageState(daemon.docker)).map((i) => i.id).sort();
          const expected = side === 'action' ? keep : undefined;
          if (expected && JSON.stringify(left) !== JSON.stringify(expected)) {
            throw new Error(`the action left ${left.length} images, expected the ${expected.length} in use`);
          }
          if (!expected && left.length !== fleet.images.length) {
            throw new Error(
              `the report run changed the daemon: ${left.length} images, not ${fleet.images.length}`,
            );
          }
        }
      } finally {
        await daemon.stop();
      }
    }
    if (round.engine !== undefined) {
      if (round.action !== undefined) result.ratios.push(round.action / round.engine);
      if (round.report !== undefined) result.reportRatios.push(round.report / round.engine);
    }
  }
  await removeDir(dir).catch(() => undefined);
  return result;
}

/**
 * The action's run, timed. As the runner's account it reaches the daemon through a socket of group
 * docker (support/account.ts: a byte pipe in front of the private daemon's socket, as the tests use) and
 * writes its files to folders of its own.
 */
async function timeAction(
  daemon: PrivateDaemon,
  mode: 'prune' | 'report',
  account?: RunnerAccount,
): Promise<ActionSample> {
  const access = account && (await accountSocket(account, daemon));
  const outDir = account ? await accountDir(account, '.sdp-bench') : daemon.dir;
  try {
    return await timedRun(daemon, mode, outDir, account, access);
  } finally {
    await access?.close();
    if (account) await rm(outDir, { recursive: true, force: true });
  }
}

async function timedRun(
  daemon: PrivateDaemon,
  mode: 'prune' | 'report',
  outDir: string,
  account?: RunnerAccount,
  access?: { host: string; env: Record<string, string> },
): Promise<ActionSample> {
  const out = path.join(outDir, `measure-${mode}.json`);
  const run = await runAction({
    host: access?.host ?? daemon.host,
    account,
    // The fleet was loaded a moment ago: without min-age 0 its grace period would keep every image.
    inputs: { mode, images: 'unused', 'keep-recent': '0', 'min-age': '0', 'runner-images-min-age': '0' },
    env: {
      ...access?.env,
      NODE_OPTIONS: `--require ${MEASURE}`,
      SDP_MEASURE_OUT: out,
      // The deletes' concurrency, when the bench is measuring it (the action's default otherwise).
      ...(process.env.SDP_DELETE_CONNECTIONS
        ? { SDP_DELETE_CONNECTIONS: process.env.SDP_DELETE_CONNECTIONS }
        : {}),
    },
    timeoutMs: 1_800_000,
  });
  if (run.code !== 0) {
    throw new Error(
      `the action (${mode}) exited with ${run.code}\n${run.stdout.slice(-4000)}\n${run.stderr}`,
    );
  }
  const measured = existsSync(out)
    ? (JSON.parse(await readFile(out, 'utf8')) as {
        firstConnectMs?: number;
        maxRssKb: number;
        requests: Record<string, number>;
      })
    : undefined;
  return {
    ms: run.durationMs,
    coldStartMs: measured?.firstConnectMs === undefined ? undefined : Math.round(measured.firstConnectMs),
    peakMb: measured && Math.round(measured.maxRssKb / 1024),
    apiCalls: measured && Object.values(measured.requests).reduce((n, c) => n + c, 0),
    calls: measured?.requests,
    timings: (run.report?.timings ?? {}) as Record<string, number>,
    summaryBytes: Buffer.byteLength(run.summary),
    reclaimed: run.outputs['reclaimed-bytes'],
  };
}

function printCase(c: Case): void {
  const a = (f: (s: ActionSample) => number | undefined, from = c.prune) =>
    from.map(f).filter((x): x is number => x !== undefined);
  console.log(
    `\n${c.engine} ${c.version}, ${c.store} store: ${c.images} images, ${c.removable} removable; ` +
      `the action as ${c.user}`,
  );
  console.log(`  fleet load (once): ${seconds(c.buildMs)}`);
  console.log(`  deletes at once:   ${process.env.SDP_DELETE_CONNECTIONS ?? "the image store's (run.ts)"}`);
  console.log(
    `  action prune:        ${spread(
      a((s) => s.ms),
      seconds,
    )}`,
  );
  console.log(`  engine image prune:  ${spread(c.engineMs, seconds)}`);
  console.log(`  action / engine:     ${spread(c.ratios, ratio)}`);
  console.log(
    `  action report:       ${spread(
      a((s) => s.ms, c.report),
      seconds,
    )}`,
  );
  console.log(`  report / engine:     ${spread(c.reportRatios, ratio)}`);
  console.log(
    `  cold start:          ${spread(
      a((s) => s.coldStartMs, [...c.prune, ...c.report]),
      (ms) => `${Math.round(ms)} ms`,
    )}`,
  );
  console.log(
    `  peak memory (prune): ${spread(
      a((s) => s.peakMb),
      (mb) => `${Math.round(mb)} MB`,
    )}`,
  );
  console.log(
    `  peak memory (report): ${spread(
      a((s) => s.peakMb, c.report),
      (mb) => `${Math.round(mb)} MB`,
    )}`,
  );
  console.log(
    `  summary:             ${spread(
      a((s) => s.summaryBytes),
      (b) => `${Math.round(b / 1024)} KiB`,
    )}`,
  );
  const calls = c.prune[0]?.calls;
  if (calls) {
    const total = Object.values(calls).reduce((n, x) => n + x, 0);
    console.log(`  API calls (prune): ${total}, ${(total / c.images).toFixed(2)} per image:`);
    for (const [call, n] of Object.entries(calls).sort((x, y) => y[1] - x[1]))
      console.log(`    ${String(n).padStart(6)} ${call}`);
  }
  const report = c.report[0]?.calls;
  if (report) {
    const total = Object.values(report).reduce((n, x) => n + x, 0);
    console.log(`  API calls (report): ${total}, ${(total / c.images).toFixed(2)} per image`);
  }
  const phases = Object.keys(c.prune[0]?.timings ?? {}).filter((k) => k !== 'totalMs');
  for (const phase of phases)
    console.log(
      `  ${phase.padEnd(20)} ${spread(
        a((s) => s.timings[phase]),
        (ms) => `${ms} ms`,
      )}`,
    );
  c.notes.forEach((n) => console.log(`  note: ${n}`));
}

/** docs/speed.md's table: one row per engine and size, medians with the min–max range. */
function markdownTable(cases: Case[], rounds: number): string {
  const mmm = (xs: number[], f: (x: number) => string) =>
    xs.length ? `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})` : '–';
  const lines = [
    `Medians (min–max) of ${rounds} round(s); one machine, 2 cores.`,
    '',
    '| engine | images (removable) | action prune | engine `image prune -a` | ratio | report / engine prune | cold start | peak memory | API calls per image | job summary |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const c of cases) {
    const calls = c.prune[0]?.apiCalls;
    lines.push(
      `| ${c.engine} ${c.version.split(' ')[0]} (${c.store})${c.user === 'root' ? '' : `, as ${c.user}`} | ${c.images} (${c.removable}) | ` +
        `${mmm(
          c.prune.map((s) => s.ms),
          seconds,
        )} | ${mmm(c.engineMs, seconds)} | ${mmm(c.ratios, ratio)} | ` +
        `${mmm(c.reportRatios, ratio)} | ${mmm(
          c.prune.flatMap((s) => (s.coldStartMs === undefined ? [] : [s.coldStartMs])),
          (ms) => `${Math.round(ms)} ms`,
        )} | ` +
        `${mmm(
          c.prune.flatMap((s) => (s.peakMb === undefined ? [] : [s.peakMb])),
          (mb) => `${Math.round(mb)} MB`,
        )} | ` +
        `${calls === undefined ? '–' : (calls / c.images).toFixed(2)} | ` +
        `${mmm(
          c.prune.map((s) => s.summaryBytes),
          (b) => `${Math.round(b / 1024)} KiB`,
        )} |`,
    );
  }
  return lines.join('\n');
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const spread = (xs: number[], f: (x: number) => string) =>
  xs.length
    ? `median ${f(median(xs))}, min ${f(Math.min(...xs))}, max ${f(Math.max(...xs))} (${xs.length})`
    : 'none';
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const ratio = (x: number) => `${x.toFixed(2)}×`;

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
