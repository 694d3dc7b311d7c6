// Cold start of both bundles: node start to the first connection to the Docker daemon (bench/measure.cjs
// records it), median/min/max over RUNS runs each. The daemon address is a socket that does not exist:
// the connect attempt is what is timed, so no daemon is needed.
// Usage: node scripts/coldstart.mjs [--runs N] [--json]; SDP_NODE=path/to/node times another Node.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 9;
const json = args.includes('--json');
const node = process.env.SDP_NODE || 'node';
const host = 'unix:///nonexistent/safe-docker-prune-coldstart.sock';

const bundles = [
  { name: 'action', argv: ['dist/index.js'], env: { INPUT_MODE: 'report', 'INPUT_DOCKER-HOST': host } },
  { name: 'cli', argv: ['dist/cli.js', '--mode', 'report', '--docker-host', host], env: {} },
];

const dir = mkdtempSync(join(tmpdir(), 'sdp-coldstart-'));
const out = join(dir, 'probe.json');
const results = [];
try {
  for (const bundle of bundles) {
    const ms = [];
    const rssKb = [];
    for (let i = 0; i < runs; i++) {
      const env = { ...process.env, ...bundle.env, SDP_MEASURE_OUT: out };
      // A run must not write into a real job's outputs or summary.
      for (const name of ['GITHUB_OUTPUT', 'GITHUB_STEP_SUMMARY', 'GITHUB_STATE', 'DOCKER_HOST'])
        delete env[name];
      rmSync(out, { force: true });
      const run = spawnSync(node, ['--require', join(root, 'bench/measure.cjs'), ...bundle.argv], {
        cwd: root,
        env,
        encoding: 'utf8',
      });
      const probe = JSON.parse(readFileSync(out, 'utf8'));
      if (probe.firstConnectMs === undefined) {
        throw new Error(
          `${bundle.name}: no connection attempt (exit ${run.status}): ${run.stderr || run.stdout}`,
        );
      }
      ms.push(probe.firstConnectMs);
      rssKb.push(probe.maxRssKb);
    }
    results.push({ bundle: bundle.name, runs, ...stats(ms), maxRssMb: median(rssKb) / 1024 });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

if (json) {
  process.stdout.write(`${JSON.stringify({ node, results })}\n`);
} else {
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  process.stdout.write(`cold start, node ${version}: start to the first daemon connection (${runs} runs)\n`);
  for (const r of results) {
    process.stdout.write(
      `  ${r.bundle.padEnd(6)} median ${r.median.toFixed(1)} ms  min ${r.min.toFixed(1)}  max ${r.max.toFixed(1)}` +
        `  peak RSS ${r.maxRssMb.toFixed(0)} MB\n`,
    );
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function stats(values) {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}
