// The containerd image store keeps images in containerd's root, not in Docker's data root, and `/info` does
// not say where that is (moby#50517). Here containerd runs on its own, its root on a 300 MB tmpfs, and
// dockerd uses it (`--containerd`), its data root on the host's disk: a free-space budget must measure the
// tmpfs, the report must show both filesystems, and `data-path` must override the choice.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runAction, type ActionRun } from './support/action';
import {
  currentEngine,
  describeDocker,
  engineCache,
  ENGINES,
  startDaemon,
  type PrivateDaemon,
} from './support/daemon';
import { clearDaemon, loadImages, type ImageSpec } from './support/fleet';

const MB = 1_000_000;
const engine = currentEngine();
const spec = ENGINES[engine] as { imageStore: string; cached?: string };
const TITLE = 'budgets on the containerd store measure containerd’s root, on a tmpfs of its own';

/** The fleet: four images of one 10 MB layer each, oldest first. */
const FLEET: ImageSpec[] = ['a', 'b', 'c', 'd'].map((name, i) => ({
  name,
  tags: [`croot/${name}:1`],
  created: `2024-01-0${i + 1}T00:00:00Z`,
  layers: [{ key: `croot-${name}`, bytes: 10 * MB }],
}));

const free = (path: string) => {
  const fs = statfsSync(path);
  return fs.bavail * fs.bsize;
};

/** containerd on its own: its root a tmpfs mounted at `<dir>/root`, its socket `<dir>/containerd.sock`. */
async function startContainerd(dir: string): Promise<{ root: string; socket: string; child: ChildProcess }> {
  const root = join(dir, 'root');
  const socket = join(dir, 'containerd.sock');
  mkdirSync(root);
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=300m', 'tmpfs', root], { encoding: 'utf8' });
  if (mount.status !== 0) throw new Error(`mount: ${mount.stderr}`);
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = "${root}"`,
      `state = "${join(dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${socket}"`,
      '',
    ].join('\n'),
  );
  const bin = join(engineCache(), spec.cached ?? '', 'usr/bin');
  const child = spawn(join(bin, 'containerd'), ['--config', config], {
    stdio: 'ignore',
    env: { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin` },
  });
  for (let i = 0; i < 100 && spawnSync('test', ['-S', socket]).status !== 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return { root, socket, child };
}

async function stopContainerd(dir: string, child?: ChildProcess): Promise<void> {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  }
  spawnSync('umount', ['-l', join(dir, 'root')]);
  rmSync(dir, { recursive: true, force: true });
}

(spec.imageStore === 'containerd'
  ? describeDocker
  : (name: string, fn: () => void) =>
      describe.skip(`${name} [skipped on ${engine}: needs the containerd image store]`, fn))(TITLE, () => {
  let dir: string;
  let containerd: Awaited<ReturnType<typeof startContainerd>> | undefined;
  let daemon: PrivateDaemon;
  /** Docker 27+ (API 1.46) names its containerd's socket in `/info`; Docker 26 does not. */
  let named: boolean;

  beforeAll(async () => {
    dir = mkdtempSync('/tmp/sdp-c8d-');
    containerd = await startContainerd(dir);
    daemon = (await startDaemon('croot', engine, { dockerdArgs: ['--containerd', containerd.socket] }))!;
    const [major, minor] = daemon.apiVersion.split('.').map(Number);
    named = major > 1 || minor >= 46;
  }, 90_000);
  afterAll(async () => {
    await daemon?.stop();
    await stopContainerd(dir, containerd?.child);
  }, 60_000);

  const run = (inputs: Record<string, string>): Promise<ActionRun> =>
    runAction({ host: daemon.host, inputs: { images: 'unused', 'keep-recent': '0', ...inputs } });

  it('measures the tmpfs and reports the data root beside it; a prune frees the tmpfs until the budget is met', async () => {
    await clearDaemon(daemon.docker);
    await loadImages(daemon.docker, FLEET);
    const tmpfsFree = free(containerd!.root);
    // Far more than the data root's disk would need: met there already, short by 25 MB here.
    const target = tmpfsFree + 25 * MB;
    expect(free(daemon.dataRoot)).toBeGreaterThan(target + 100 * MB);

    const report = await run({ mode: 'report', 'free-space': String(target) });
    expect(report.code).toBe(0);
    const disk = report.report.disk;
    if (!named) {
      // Docker 26 does not say which containerd it uses: the data root is measured, as before.
      expect(disk).toMatchObject({ path: daemon.dataRoot, holds: 'data-root', dataRoot: null });
      return;
    }
    expect(disk.path).toBe(join(containerd!.root, 'io.containerd.snapshotter.v1.overlayfs'));
    expect(disk.holds).toBe('snapshots');
    expect(disk.why).toContain(containerd!.socket);
    expect(Math.abs(disk.freeBefore - tmpfsFree)).toBeLessThan(2 * MB);
    expect(disk.dataRoot.path).toBe(daemon.dataRoot);
    expect(disk.dataRoot.freeBefore).toBeGreaterThan(target + 100 * MB);
    expect(report.report.budget.before.freeBytes).toBe(disk.freeBefore);
    expect(report.report.budget.steps.length).toBeGreaterThanOrEqual(2);
    expect(report.summary).toContain(`data root ${daemon.dataRoot}`);

    const prune = await run({ mode: 'prune', 'free-space': String(target) });
    expect(prune.code).toBe(0);
    const after = prune.report.disk;
    expect(after.freeAfter).toBeGreaterThanOrEqual(target);
    expect(Math.abs(after.freeAfter - free(containerd!.root))).toBeLessThan(2 * MB);
    expect(after.dataRoot.freeAfter).toBeGreaterThan(0);
    expect(prune.report.budget.metAfterPrune).toBe(true);
    // Not everything: the budget stopped it (which go first depends on the load's tag times).
    const left = (await daemon.docker.listImages()).flatMap((i) => i.RepoTags ?? []);
    expect(left.length).toBeGreaterThan(0);
    expect(left.length).toBeLessThan(FLEET.length);
  }, 180_000);

  it('data-path overrides which filesystem is measured', async () => {
    const r = await run({ mode: 'report', 'free-space': '1GB', 'data-path': daemon.dataRoot });
    expect(r.code).toBe(0);
    expect(r.report.disk).toMatchObject({ path: daemon.dataRoot, holds: 'data-path', dataRoot: null });
    expect(Math.abs(r.report.disk.freeBefore - free(daemon.dataRoot))).toBeLessThan(50 * MB);
  }, 60_000);

  it('a data-path that does not exist fails the run, naming the input and the value', async () => {
    const r = await run({ mode: 'prune', 'data-path': join(dir, 'missing') });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toContain(`data-path: "${join(dir, 'missing')}" does not exist`);
  }, 60_000);
});
