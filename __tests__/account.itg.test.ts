// The runner's account: the bundled action and the command run as an unprivileged user in the `docker`
// group (support/account.ts), as GitHub's runners run jobs. That user reaches the daemon's socket but
// cannot read its data root: every image is read through the API, the files go to that user's folders,
// and the decisions, the removed sets and the estimate are those of a run as root.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  accountCan,
  accountDir,
  accountSocket,
  ownerOf,
  runnerAccount,
  type AccountSocket,
  type RunnerAccount,
} from './support/account';
import { recordRun, repoRoot, runAction, spawnNode, startNode, type ActionRun } from './support/action';
import { describeDocker, itWith, startDaemon, type PrivateDaemon } from './support/daemon';
import { clearDaemon, imageState, loadFleet, sampleFleet } from './support/fleet';

const NOW = Date.now();
const P = 'sample';
// SDP_CLI runs another build of the command (default: the committed bundle), as SDP_ACTION does the action.
const CLI = path.resolve(repoRoot(), process.env.SDP_CLI ?? 'dist/cli.js');

let account: RunnerAccount;
let daemon: PrivateDaemon;
let access: AccountSocket;
/** The account's tool cache (RUNNER_TOOL_CACHE): the usage history's default home. */
let toolCache: string;

/** The sample fleet, afresh; containers are created only where the engine cannot start them. */
async function buildFleet(): Promise<void> {
  await clearDaemon(daemon.docker);
  const fleet = sampleFleet({ now: NOW });
  if (!daemon.canRunContainers) {
    fleet.containers = fleet.containers.map((c) => ({ ...c, state: 'created' as const }));
  }
  await loadFleet(daemon.docker, fleet);
}

const asAccount = (inputs: Record<string, string>) =>
  runAction({
    host: access.host,
    inputs,
    env: { ...access.env, RUNNER_TOOL_CACHE: toolCache },
    account,
  });

const asRoot = (inputs: Record<string, string>) => runAction({ host: daemon.host, inputs });

const decisions = (report: { images: { id: string; state: string; reason: string }[] }) =>
  Object.fromEntries(report.images.map((i) => [i.id, `${i.state}/${i.reason}`]));

/** What the engine's own prune removes: Docker's API, or Podman's CLI (its compatible API removes fewer). */
async function enginePrune(all: boolean): Promise<void> {
  if (daemon.engine.startsWith('podman')) {
    const r = await daemon.cli(['image', 'prune', '-f', ...(all ? ['-a'] : [])]);
    if (r.code !== 0) throw new Error(`podman image prune failed: ${r.stderr}`);
  } else {
    await daemon.docker.pruneImages({ filters: { dangling: [all ? 'false' : 'true'] } });
  }
}

/**
 * The estimate against what the prune measured: within 1% where the report calls it exact, else the
 * measured figure lies between the bounds of the report's estimate method.
 */
function expectEstimateHolds(run: ActionRun): void {
  const estimated = Number(run.outputs['estimated-bytes']);
  const reclaimed = Number(run.outputs['reclaimed-bytes']);
  const method = run.report.estimateMethod as { method: string; exact: boolean; low?: number; high?: number };
  console.log(
    `${daemon.engine} as ${account.name}: ${method.method}, estimated ${estimated} ` +
      `(${method.low ?? estimated}–${method.high ?? estimated}), reclaimed ${reclaimed}`,
  );
  expect(reclaimed).toBeGreaterThan(0);
  if (method.exact) {
    expect(Math.abs(estimated - reclaimed)).toBeLessThanOrEqual(0.01 * reclaimed);
  } else {
    expect(reclaimed).toBeGreaterThanOrEqual(method.low! * 0.99);
    expect(reclaimed).toBeLessThanOrEqual(method.high! * 1.01);
  }
}

describeDocker("the runner's account: an unprivileged user in the docker group", () => {
  beforeAll(async () => {
    account = runnerAccount()!;
    daemon = (await startDaemon('account'))!;
    access = await accountSocket(account, daemon);
    toolCache = await accountDir(account, '.sdp-tools');
  }, 120_000);
  afterAll(async () => {
    await access?.close();
    await daemon?.stop();
  }, 60_000);

  it('cannot read the data root; reaches the daemon through a socket of group docker', async () => {
    expect(accountCan(account, '-r', daemon.dataRoot)).toBe(false);
    expect(accountCan(account, '-x', daemon.dataRoot)).toBe(false);
    if (daemon.socket) {
      expect(accountCan(account, '-w', daemon.socket)).toBe(false);
      expect(accountCan(account, '-w', access.socket)).toBe(true);
    }
  });

  it('report: the decisions of a run as root, every image read through the API, its files in its own folders', async () => {
    await buildFleet();
    const inputs = { images: 'unused', 'keep-recent': '1', protect: `${P}/db` };
    const run = await asAccount(inputs);
    expect(run.code).toBe(0);
    expect(run.report.daemon.layersReadFrom).toBe('api');
    expect(run.reportUid).toBe(account.uid);
    const usage = path.join(toolCache, 'safe-docker-prune', 'usage.json');
    expect(await ownerOf(usage)).toBe(account.uid);
    // No lock left behind, nothing written beside the history.
    expect((await readdir(path.dirname(usage))).filter((f) => !f.startsWith('usage.json'))).toEqual([]);

    const root = await asRoot(inputs);
    expect(root.code).toBe(0);
    expect(decisions(run.report)).toEqual(decisions(root.report));
    expect(run.outputs['removed-count']).toBe(root.outputs['removed-count']);
    // Root reads the store and its figure is exact: the account's is the same, or brackets it.
    const method = run.report.estimateMethod as { exact: boolean; low?: number; high?: number };
    const rootBytes = Number(root.outputs['estimated-bytes']);
    if (method.exact) expect(Number(run.outputs['estimated-bytes'])).toBe(rootBytes);
    else expect([method.low! <= rootBytes, rootBytes <= method.high!]).toEqual([true, true]);
  }, 180_000);

  for (const images of ['dangling', 'unused']) {
    it(`images=${images}: leaves what the engine's own prune leaves; the estimate is what was freed`, async () => {
      await buildFleet();
      const run = await asAccount({ mode: 'prune', images, 'keep-recent': '0' });
      expect(run.code).toBe(0);
      const ours = await imageState(daemon.docker);
      await buildFleet();
      await enginePrune(images === 'unused');
      expect(ours).toEqual(await imageState(daemon.docker));
      expectEstimateHolds(run);
    }, 240_000);
  }

  it('containers and networks: the stopped and unused ones go', async () => {
    await buildFleet();
    await daemon.docker.createNetwork({ Name: 'idle-net' });
    const run = await asAccount({
      mode: 'prune',
      images: 'none',
      containers: 'stopped',
      networks: 'unused',
    });
    expect(run.code).toBe(0);
    const left = await daemon.docker.listContainers({ all: true });
    expect(left.every((c) => c.State === 'running')).toBe(true);
    expect(Number(run.outputs['removed-containers'])).toBeGreaterThan(0);
    const networks = (await daemon.docker.listNetworks()).map((n) => n.Name);
    expect(networks).not.toContain('idle-net');
    expect(Number(run.outputs['removed-networks'])).toBeGreaterThanOrEqual(1);
  }, 180_000);

  itWith(
    ['buildkit'],
    'build cache: the unused records go',
    async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'sdp-bk-'));
      await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY data /data\n');
      await writeFile(path.join(dir, 'data'), Buffer.alloc(50_000, 'account'));
      const built = await daemon.cli(['build', '-q', '-t', 'bk/account:1', dir], {
        env: { DOCKER_BUILDKIT: '1' },
      });
      await rm(dir, { recursive: true, force: true });
      expect(built.code).toBe(0);
      await daemon.docker.getImage('bk/account:1').remove();
      const run = await asAccount({ mode: 'prune', images: 'none', 'build-cache': 'unused' });
      expect(run.code).toBe(0);
      const df = await daemon.docker.df();
      expect((df.BuildCache ?? []).filter((r: { InUse: boolean }) => !r.InUse)).toEqual([]);
    },
    180_000,
  );

  it('a free-space budget: plans by the estimate and stops by it', async () => {
    await buildFleet();
    // A budget no prune can meet lists the whole order; the disk figure is the data root's filesystem
    // where the account can measure it, else unknown (then the estimate alone counts).
    const run = await asAccount({
      mode: 'report',
      images: 'unused',
      'keep-recent': '0',
      'free-space': '99%',
    });
    expect(run.code).toBe(0);
    expect(run.outputs['disk-free-before']).toMatch(/^(\d+|unknown)$/);
    const steps = run.report.budget.steps as { kind: string; runningTotal: number }[];
    // The account cannot statfs a data root in a folder it cannot enter: no disk figure, no steps
    // (measuring the filesystem as this user is issue 17's "right filesystem" part).
    if (run.outputs['disk-free-before'] === 'unknown') return;
    expect(steps.length).toBeGreaterThan(0);
    expect(steps.at(-1)!.runningTotal).toBe(Number(run.outputs['estimated-bytes']));
  }, 180_000);

  itWith(
    ['run-containers'],
    'gates: a running critical container passes, a missing one stops the run before anything goes',
    async () => {
      await buildFleet();
      const before = await imageState(daemon.docker);
      const failed = await asAccount({
        mode: 'prune',
        images: 'unused',
        'critical-containers': `${P}-running, no-such-container`,
      });
      expect(failed.code).toBe(1);
      expect(failed.stdout).toMatch(/::error.*no-such-container/);
      expect(await imageState(daemon.docker)).toEqual(before);
      const passed = await asAccount({
        mode: 'prune',
        images: 'unused',
        'critical-containers': `${P}-running`,
      });
      expect(passed.code).toBe(0);
      expect(Number(passed.outputs['removed-count'])).toBeGreaterThan(0);
    },
    180_000,
  );

  it('the command: the report in its private folder, the loop lock there too, the same estimate as root', async () => {
    await buildFleet();
    const home = account.home;
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      // The fleet was loaded moments ago (see runAction).
      SAFE_DOCKER_PRUNE_MIN_AGE: '0',
      SAFE_DOCKER_PRUNE_RUNNER_IMAGES_MIN_AGE: '0',
      ...access.env,
    };
    const args = ['--json', '--docker-host', access.host, '--images', 'unused', '--keep-recent', '0'];
    const started = performance.now();
    const cli = await spawnNode(CLI, env, repoRoot(), 120_000, account, args);
    recordRun('command as the account', { ...cli, durationMs: Math.round(performance.now() - started) });
    expect(cli.code).toBe(0);
    const report = JSON.parse(cli.stdout);
    expect(report.daemon.layersReadFrom).toBe('api');
    const privateDir = path.join(home, '.cache', 'safe-docker-prune');
    expect(await ownerOf(path.join(privateDir, 'report.json'))).toBe(account.uid);
    const root = await asRoot({ images: 'unused', 'keep-recent': '0' });
    expect(decisions(report)).toEqual(decisions(root.report));
    if (report.estimateMethod.exact)
      expect(report.totals.estimatedBytes).toBe(root.report.totals.estimatedBytes);

    // Loop mode takes its lock in the same folder, as the account's own file.
    const loop = await startNode(CLI, env, repoRoot(), account, [
      '--every',
      '1h',
      '--docker-host',
      access.host,
    ]);
    let stderr = '';
    loop.stderr!.on('data', (c) => (stderr += c));
    const exited = new Promise((resolve) => loop.on('close', resolve));
    const deadline = Date.now() + 60_000;
    while (!stderr.includes('next pass in') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const locks = (await readdir(privateDir)).filter((f) => /^loop-.*\.lock$/.test(f));
    expect(locks).toHaveLength(1);
    expect(await ownerOf(path.join(privateDir, locks[0]))).toBe(account.uid);
    loop.kill('SIGTERM');
    await exited;
    expect((await readdir(privateDir)).filter((f) => /^loop-.*\.lock$/.test(f))).toEqual([]);
  }, 240_000);
});
