// Benchmark: a full prune run of the action against `docker image prune -a -f` on identical fleets
// (500 images, 400 of them unused) on one private daemon. Run with `npm run bench -- --rounds N`.
// First, the budget's planning time for 5,000 images (pure; `npm run bench -- --budget-plan` for only that).
import { spawn } from 'node:child_process';
import { runAction } from '../__tests__/support/action';
import { benchBudgetPlan } from './budget-plan';
import { startDaemon, type PrivateDaemon } from '../__tests__/support/daemon';
import {
  clearDaemon,
  createContainers,
  imageState,
  loadImages,
  scaleFleet,
} from '../__tests__/support/fleet';

interface Options {
  rounds: number;
  images: number;
  used: number;
}

interface Round {
  buildMs: number[];
  actionMs: number;
  applyMs?: number;
  dockerMs: number;
}

const DOCKER_CLI = process.env.SDP_DOCKER_CLI ?? '/usr/bin/docker';
// A fixed "now" makes every build of the fleet give the same image IDs.
const NOW = Date.parse('2025-01-01T00:00:00Z');

function parseArgs(argv: string[]): Options {
  const opts: Options = { rounds: 3, images: 500, used: 100 };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '') as keyof Options;
    const value = Number(argv[++i]);
    if (!(key in opts) || !Number.isInteger(value) || value < 1) {
      throw new Error(
        `usage: bench [--rounds N] [--images N] [--used N] (got ${argv.slice(i - 1).join(' ')})`,
      );
    }
    opts[key] = value;
  }
  if (opts.used > opts.images / 5) throw new Error('--used can be at most a fifth of --images');
  return opts;
}

async function main(): Promise<void> {
  // The budget's planning cost first: pure, no daemon (`--budget-plan` runs only this).
  const args = process.argv.slice(2);
  const planOnly = args.includes('--budget-plan');
  console.log('plan of 5,000 images (synthetic inventory), median of 5:');
  for (const [name, ms] of Object.entries(benchBudgetPlan(5000))) console.log(`  ${name}: ${ms} ms`);
  if (planOnly) return;
  const opts = parseArgs(args);
  const fleet = scaleFleet({ images: opts.images, used: opts.used, now: NOW });
  const removable = opts.images - opts.used;
  console.log(
    `fleet: ${opts.images} images, ${removable} unused, ${fleet.containers.length} created containers`,
  );

  const daemon = await startDaemon('bench');
  if (!daemon) throw new Error('the benchmark needs dockerd and root');
  process.once('SIGINT', () => void daemon.stop().finally(() => process.exit(130)));
  try {
    const rounds: Round[] = [];
    let expected: string[] | undefined;
    for (let r = 1; r <= opts.rounds; r++) {
      const round: Partial<Round> & { buildMs: number[] } = { buildMs: [] };
      // Alternate which goes first, so neither always meets a daemon just warmed up by the other.
      const order = r % 2 ? (['action', 'docker'] as const) : (['docker', 'action'] as const);
      for (const which of order) {
        const build = await buildFleet(daemon, fleet);
        round.buildMs.push(build.ms);
        expected ??= build.keep;
        process.stdout.write(`round ${r}: fleet built in ${seconds(build.ms)}; ${which} prune... `);
        if (which === 'action') {
          const run = await runAction({
            host: daemon.host,
            inputs: { mode: 'prune', images: 'unused', 'keep-recent': '0' },
          });
          if (run.code !== 0) {
            console.error(`\nthe action exited with ${run.code}\n${run.stdout.slice(-4000)}\n${run.stderr}`);
            process.exitCode = 1;
            return;
          }
          round.actionMs = run.durationMs;
          round.applyMs = run.report?.timings?.applyMs;
          const phases = Object.entries((run.report?.timings ?? {}) as Record<string, number>)
            .map(([phase, ms]) => `${phase} ${ms}`)
            .join(', ');
          console.log(
            `${seconds(run.durationMs)} (${phases || 'no timings'}), reclaimed ${run.outputs['reclaimed-bytes']} bytes`,
          );
        } else {
          const started = performance.now();
          const out = await exec(DOCKER_CLI, ['-H', daemon.host, 'image', 'prune', '-a', '-f']);
          round.dockerMs = Math.round(performance.now() - started);
          console.log(`${seconds(round.dockerMs)}, ${out.trim().split('\n').pop()}`);
        }
        const left = (await imageState(daemon.docker)).map((i) => i.id);
        if (JSON.stringify(left) !== JSON.stringify(expected)) {
          throw new Error(`${which} left ${left.length} images, expected the ${expected.length} in use`);
        }
      }
      rounds.push(round as Round);
    }
    report(rounds, removable);
  } finally {
    await daemon.stop();
  }
}

/** A clean daemon with the fleet on it; returns the time taken and the IDs a prune must leave. */
async function buildFleet(daemon: PrivateDaemon, fleet: ReturnType<typeof scaleFleet>) {
  await clearDaemon(daemon.docker);
  const started = performance.now();
  const ids = await loadImages(daemon.docker, fleet.images);
  await createContainers(daemon.docker, fleet.containers);
  const ms = Math.round(performance.now() - started);
  const count = (await daemon.docker.listImages({ all: true })).length;
  if (count !== fleet.images.length)
    throw new Error(`fleet has ${count} images, expected ${fleet.images.length}`);
  const keep = [...new Set(fleet.containers.map((c) => ids.get(c.image)!))].sort();
  return { ms, keep };
}

function report(rounds: Round[], removable: number): void {
  console.log(
    `\n${'round'.padEnd(6)}${['build', 'action', 'deletion', 'docker', 'action/docker', 'deletion/docker'].map((h) => h.padStart(16)).join('')}`,
  );
  rounds.forEach((r, i) => {
    const cells = [
      seconds(median(r.buildMs)),
      seconds(r.actionMs),
      r.applyMs === undefined ? '-' : seconds(r.applyMs),
      seconds(r.dockerMs),
      ratio(r.actionMs / r.dockerMs),
      r.applyMs === undefined ? '-' : ratio(r.applyMs / r.dockerMs),
    ];
    console.log(`${String(i + 1).padEnd(6)}${cells.map((c) => c.padStart(16)).join('')}`);
  });
  const build = median(rounds.flatMap((r) => r.buildMs));
  console.log(`\nfleet build (load + containers): median ${seconds(build)}`);
  console.log(
    `docker image prune -a -f of ${removable} images: median ${seconds(median(rounds.map((r) => r.dockerMs)))}`,
  );
  console.log(
    `whole action run / docker prune: median ${ratio(median(rounds.map((r) => r.actionMs / r.dockerMs)))}`,
  );
  const applied = rounds.filter((r) => r.applyMs !== undefined);
  if (applied.length) {
    console.log(
      `deletion phase / docker prune: median ${ratio(median(applied.map((r) => r.applyMs! / r.dockerMs)))}`,
    );
  } else {
    console.log('deletion phase / docker prune: the report had no timings.applyMs');
  }
}

function exec(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${file} exited with ${code}: ${out}`)),
    );
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const ratio = (x: number) => `${x.toFixed(2)}x`;

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
