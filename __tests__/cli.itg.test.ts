// The command (node dist/cli.js, the bundle a fresh clone runs) on a private daemon: the same decisions as
// the action on the same fleet, a prune, the metrics file as Prometheus text, exit codes, and loop mode
// stopping cleanly on SIGTERM and refusing a second loop on the same daemon.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { collectRun, repoRoot, runAction } from './support/action';
import { describeDocker, startDaemon, type PrivateDaemon } from './support/daemon';
import { clearDaemon, imageState, loadFleet, sampleFleet } from './support/fleet';

const root = repoRoot();
const CLI = path.join(root, 'dist', 'cli.js');
let daemon: PrivateDaemon;
let temp: string;

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A clean environment (no DOCKER_HOST of the caller's), the daemon's own (TLS variables), plus `env`. The
 * grace periods are off: the fleet was loaded moments ago (see runAction).
 */
function cliEnv(env: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: temp,
    TMPDIR: temp,
    SAFE_DOCKER_PRUNE_MIN_AGE: '0',
    SAFE_DOCKER_PRUNE_RUNNER_IMAGES_MIN_AGE: '0',
    ...daemon?.env,
    ...env,
  };
}

function startCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.env.SDP_NODE ?? process.execPath, [CLI, ...args], { env: cliEnv(env), cwd: root });
}

function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return collectRun(startCli(args, env), `command ${args.join(' ')}`);
}

/** Starts a loop-mode command and waits until its stderr shows `marker`. */
async function startLoop(marker: string) {
  const child = startCli(['--every', '1h', '--json', '--docker-host', daemon.host]);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c) => (stdout += c));
  child.stderr!.on('data', (c) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!stderr.includes(marker) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

const decisions = (report: { images: { id: string; state: string; reason: string }[] }) =>
  Object.fromEntries(report.images.map((i) => [i.id, `${i.state}/${i.reason}`]));

const POLICY = ['--images', 'unused', '--keep-recent', '1', '--protect', 'label=com.example.keep'];

describeDocker('the command on a real daemon', () => {
  beforeAll(async () => {
    temp = await mkdtemp(path.join(tmpdir(), 'sdp-cli-'));
    daemon = (await startDaemon('cli'))!;
    const fleet = sampleFleet({ now: Date.now() });
    // Where containers cannot start (Podman here), the fleet's containers are created only: they pin
    // their images all the same.
    if (!daemon.canRunContainers) {
      fleet.containers = fleet.containers.map((c) => ({ ...c, state: 'created' as const }));
    }
    await loadFleet(daemon.docker, fleet);
  }, 180_000);
  afterAll(async () => {
    await daemon?.stop();
    await rm(temp, { recursive: true, force: true });
  }, 60_000);

  it('--help works from the bundle, listing every flag', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('--keep-recent N');
    expect(run.stdout).toContain('--metrics-file PATH');
  });

  it('makes the same decisions as the action on the same fleet; --json prints only the report', async () => {
    const action = await runAction({
      host: daemon.host,
      inputs: { images: 'unused', 'keep-recent': '1', protect: 'label=com.example.keep' },
    });
    expect(action.code).toBe(0);
    const run = await runCli(['--json', '--docker-host', daemon.host, ...POLICY]);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.mode).toBe('report');
    expect(decisions(report)).toEqual(decisions(action.report));
    expect(report.totals).toEqual(action.report.totals);
    // Logs on stderr, no workflow commands outside Actions.
    expect(run.stderr).toContain('images');
    expect(run.stdout + run.stderr).not.toContain('::group::');
  }, 120_000);

  it('variables work like flags; the table shows what would go, with reasons; nothing is removed', async () => {
    const before = await imageState(daemon.docker);
    const run = await runCli([], {
      SAFE_DOCKER_PRUNE_DOCKER_HOST: daemon.host,
      SAFE_DOCKER_PRUNE_IMAGES: 'unused',
      SAFE_DOCKER_PRUNE_KEEP_RECENT: '1',
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^safe-docker-prune: report \(nothing was removed\)/);
    expect(run.stdout).toMatch(/Would remove \d+ image\(s\), freeing/);
    expect(run.stdout).toContain('keep-recent');
    expect(await imageState(daemon.docker)).toEqual(before);
  }, 120_000);

  it('prunes what the report listed, writes Prometheus metrics, exits 0', async () => {
    const report = JSON.parse((await runCli(['--json', '--docker-host', daemon.host, ...POLICY])).stdout);
    const planned = report.images
      .filter((i: { state: string }) => i.state === 'would-remove')
      .map((i: { id: string }) => i.id);
    expect(planned.length).toBeGreaterThan(0);
    const metricsFile = path.join(temp, 'sdp.prom');
    const run = await runCli([
      '--mode',
      'prune',
      '--docker-host',
      daemon.host,
      '--metrics-file',
      metricsFile,
      ...POLICY,
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/Removed \d+ image\(s\), reclaimed/);
    const left = new Set((await imageState(daemon.docker)).map((i) => i.id));
    for (const id of planned) expect(left.has(id)).toBe(false);

    const metrics = await readFile(metricsFile, 'utf8');
    const samples = new Map<string, number>();
    for (const line of metrics.trim().split('\n')) {
      if (line.startsWith('#')) {
        expect(line).toMatch(/^# (HELP|TYPE) safe_docker_prune_\w+ \S/);
        continue;
      }
      const m = /^(safe_docker_prune_\w+)\{((?:\w+="(?:[^"\\]|\\.)*",?)*)\} (-?[\d.]+(?:e[+-]?\d+)?)$/.exec(
        line,
      );
      expect(m).not.toBeNull();
      samples.set(`${m![1]}{${m![2]}}`, Number(m![3]));
    }
    const d = `daemon="${daemon.host}"`;
    expect(samples.get(`safe_docker_prune_success{${d},mode="prune"}`)).toBe(1);
    expect(samples.get(`safe_docker_prune_removed{${d},mode="prune",kind="images"}`)).toBe(planned.length);
    expect(samples.get(`safe_docker_prune_last_success_timestamp_seconds{${d}}`)).toBeGreaterThan(
      Date.now() / 1000 - 120,
    );
  }, 180_000);

  it('bad input exits 2 naming the input; an unreachable daemon exits 3', async () => {
    const bad = await runCli(['--docker-host', daemon.host, '--older-than', '7 days']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('older-than: "7 days"');
    const gone = await runCli(['--docker-host', `unix://${temp}/nothing.sock`]);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toContain(`${temp}/nothing.sock`);
  }, 60_000);

  it('loop mode: one JSON report per pass; a second loop on the daemon refuses; SIGTERM exits 0', async () => {
    const loop = await startLoop('next pass in');
    expect(loop.stdout().trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(loop.stdout()).mode).toBe('report');

    const second = await runCli(['--every', '1h', '--docker-host', daemon.host]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`already running against ${daemon.host}`);

    const signalled = Date.now();
    loop.child.kill('SIGTERM');
    expect(await loop.exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(5_000);
    expect(loop.stderr()).toContain('SIGTERM');
  }, 120_000);

  it('SIGTERM during a pass lets it finish: the report is printed, then the loop exits 0', async () => {
    // The pass has begun once the inventory phase is logged.
    const loop = await startLoop('== Inventory');
    loop.child.kill('SIGTERM');
    expect(await loop.exited).toBe(0);
    expect(JSON.parse(loop.stdout().trim()).mode).toBe('report');
    expect(loop.stderr()).toContain('finishing the pass in progress');
    expect(loop.stderr()).not.toContain('next pass in');
  }, 120_000);

  it.each(['runner-job-completed.sh', 'runner-job-started.sh'])(
    'the runner hook script %s runs the command and never fails the job',
    async (script) => {
      const hook = path.join(root, 'examples', script);
      const runHook = (env: Record<string, string>) =>
        collectRun(spawn('bash', [hook], { env: cliEnv(env) }), `hook ${script}`);
      const ok = await runHook({
        SAFE_DOCKER_PRUNE_DOCKER_HOST: daemon.host,
        SAFE_DOCKER_PRUNE_MODE: 'report',
      });
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain('safe-docker-prune: report (nothing was removed)');
      expect(ok.stdout).toContain('safe-docker-prune exited with 0');
      expect(ok.stdout).not.toContain('warning: safe-docker-prune did not finish');
      // The budget turned off (every candidate goes): no target is passed without its line either.
      const noBudget = await runHook({
        SAFE_DOCKER_PRUNE_DOCKER_HOST: daemon.host,
        SAFE_DOCKER_PRUNE_MODE: 'report',
        SAFE_DOCKER_PRUNE_FREE_SPACE: '',
      });
      expect(noBudget.stdout).toContain('safe-docker-prune exited with 0');
      const down = await runHook({ SAFE_DOCKER_PRUNE_DOCKER_HOST: `unix://${temp}/gone.sock` });
      expect(down.code).toBe(0);
      expect(down.stdout).toContain('safe-docker-prune exited with 3');
      if (script === 'runner-job-started.sh')
        expect(down.stdout).toContain('warning: safe-docker-prune did not finish');
    },
    120_000,
  );

  it('leaves the fleet for the next test file', async () => {
    await clearDaemon(daemon.docker);
  }, 60_000);
});
