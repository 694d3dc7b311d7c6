// The numbers on the engine this run targets (SDP_ENGINE): the summary and report name the engine, and the
// estimate made before deleting is checked against what was really freed, both through the engine's own
// usage API and on the disk of its data root. Same fleet on every engine: shared bases, an image family
// whose base goes with it, dangling images, created containers pinning images, protected and rollback tags.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { runAction } from './support/action';
import {
  currentEngine,
  describeDocker,
  ENGINES,
  startDaemon,
  type EngineSpec,
  type PrivateDaemon,
} from './support/daemon';
import { clearDaemon, createContainers, imageState, loadImages, type ImageSpec } from './support/fleet';

const DAY = 86_400_000;
const NOW = Date.now();

/** 24 images: 3 repositories over two shared bases, a family whose own base goes too, 3 dangling. */
function fleet(): ImageSpec[] {
  const images: ImageSpec[] = [];
  for (const [r, repo] of ['eng/web', 'eng/api', 'eng/worker'].entries()) {
    for (let v = 1; v <= 6; v++) {
      images.push({
        tags: [`${repo}:${v}`],
        layers: [
          { key: `eng-base-${r % 2}`, bytes: 300_000 },
          { key: `eng-${repo}-deps`, bytes: 120_000 + r * 1000 },
          { key: `eng-${repo}-${v}`, bytes: 20_000 + v * 3_000 },
        ],
        created: new Date(NOW - (40 - v - r) * DAY),
        labels: v === 1 && r === 0 ? { 'com.example.keep': 'yes' } : {},
      });
    }
  }
  for (let v = 1; v <= 3; v++) {
    images.push({
      tags: [`eng/solo:${v}`],
      layers: [
        { key: 'eng-solo-base', bytes: 250_000 },
        { key: `eng-solo-${v}`, bytes: 10_000 * v },
      ],
      created: new Date(NOW - (60 + v) * DAY),
    });
  }
  for (let d = 1; d <= 3; d++) {
    images.push({
      tags: [],
      name: `eng-dangling-${d}`,
      layers: [{ key: `eng-dangling-${d}`, bytes: 15_000 * d }],
      created: new Date(NOW - (70 + d) * DAY),
    });
  }
  return images;
}

/** Bytes under a folder as `du` counts them (allocated blocks), or undefined when du cannot tell. */
function diskUsage(dir: string): number {
  const du = spawnSync('du', ['-s', '-B1', '-x', dir], { encoding: 'utf8' });
  return Number(du.stdout.split(/\s/)[0]);
}

let daemon: PrivateDaemon;
let ids: Map<string, string>;

describeDocker('estimate against what the engine really frees', () => {
  beforeAll(async () => {
    daemon = (await startDaemon('engines'))!;
  }, 120_000);
  afterAll(async () => daemon?.stop(), 60_000);

  beforeEach(async () => {
    await clearDaemon(daemon.docker);
    ids = await loadImages(daemon.docker, fleet());
    // Created (never started) containers pin an old web and the newest worker: works on every engine.
    await createContainers(daemon.docker, [
      { name: 'eng-uses-web-2', image: ids.get('eng/web:2')!, state: 'created' },
      { name: 'eng-uses-worker-6', image: ids.get('eng/worker:6')!, state: 'created' },
    ]);
  }, 180_000);

  const PRUNE = {
    mode: 'prune',
    images: 'unused',
    'keep-recent': '2',
    protect: 'label=com.example.keep, eng/api:3',
  };

  it('names the engine, its version, API version and image store in the summary and the report', async () => {
    // keep-recent 0 (and the grace periods off, as runAction has them): no arrival time is needed, which
    // on the containerd store only an inspect per image gives.
    const run = await runAction({ host: daemon.host, inputs: { images: 'unused', 'keep-recent': '0' } });
    expect(run.code).toBe(0);
    const expected = {
      version: daemon.version,
      apiVersion: daemon.apiVersion,
      imageStore: daemon.imageStore,
    };
    // The daemon runs on this machine: its classic store, Podman's storage, or its containerd content store
    // where the list names the manifests (API 1.46+), is read from disk; Docker 26's containerd store by API.
    const [major, minor] = daemon.apiVersion.split('.').map(Number);
    const fromStore = daemon.imageStore !== 'containerd' || major > 1 || minor >= 46;
    expect(run.report.daemon).toMatchObject({
      engine: daemon.imageStore === 'podman' ? 'podman' : 'docker',
      ...expected,
      layersReadFrom: fromStore ? 'store' : 'api',
    });
    expect(run.summary).toContain(
      `${daemon.imageStore === 'podman' ? 'Podman' : 'Docker'} ${daemon.version}`,
    );
    expect(run.summary).toContain(`API ${daemon.apiVersion}`);
    expect(run.summary).toMatch(
      { classic: /classic image store/, containerd: /containerd image store/, podman: /containers\/storage/ }[
        daemon.imageStore
      ],
    );
    expect(run.summary).toContain(`Estimate method: <code>${run.report.estimateMethod.method}</code>`);
  }, 120_000);

  it('rules hold: in use, protected, rollback tags stay; report and prune agree on the set', async () => {
    const report = await runAction({ host: daemon.host, inputs: { ...PRUNE, mode: 'report' } });
    expect(report.code).toBe(0);
    const before = await imageState(daemon.docker);
    expect(before).toHaveLength(fleet().length);
    const wouldRemove = new Set(
      (report.report.images as { id: string; state: string }[])
        .filter((i) => i.state === 'would-remove')
        .map((i) => i.id),
    );

    const prune = await runAction({ host: daemon.host, inputs: PRUNE });
    expect(prune.code).toBe(0);
    const removed = new Set(
      (prune.report.images as { id: string; state: string }[])
        .filter((i) => i.state === 'removed')
        .map((i) => i.id),
    );
    expect([...removed].sort()).toEqual([...wouldRemove].sort());
    const left = new Set((await imageState(daemon.docker)).map((i) => i.id));
    for (const id of removed) expect(left.has(id)).toBe(false);
    // Pinned by a created container, protected by label and by name, and the 2 newest of each repository.
    for (const ref of [
      'eng/web:2',
      'eng/worker:6',
      'eng/web:1',
      'eng/api:3',
      'eng/web:6',
      'eng/web:5',
      'eng/api:6',
      'eng/api:5',
      'eng/solo:1',
      'eng/solo:2',
    ]) {
      expect([ref, left.has(ids.get(ref)!)]).toEqual([ref, true]);
    }
    // Old unpinned tags and the dangling images went.
    for (const ref of ['eng/web:3', 'eng/api:1', 'eng/worker:1', 'eng/solo:3', 'eng-dangling-1']) {
      expect(removed.has(ids.get(ref)!)).toBe(true);
    }
  }, 240_000);

  it.each([
    ['unused', 'image prune -a -f'],
    ['dangling', 'image prune -f'],
  ])(
    'images: %s removes exactly the images the engine’s own `%s` removes',
    async (images, command) => {
      const args = command.split(' ');
      const run = await runAction({
        host: daemon.host,
        inputs: { mode: 'prune', images, 'keep-recent': '0' },
      });
      expect(run.code).toBe(0);
      const ours = await imageState(daemon.docker);

      await clearDaemon(daemon.docker);
      ids = await loadImages(daemon.docker, fleet());
      await createContainers(daemon.docker, [
        { name: 'eng-uses-web-2', image: ids.get('eng/web:2')!, state: 'created' },
        { name: 'eng-uses-worker-6', image: ids.get('eng/worker:6')!, state: 'created' },
      ]);
      const own = await daemon.cli(args);
      expect(own.code).toBe(0);
      // The same image IDs stay. (Tags may differ: Docker 26's own prune -a on the containerd store
      // untags an image a created container uses; the action never touches such an image.)
      const theirs = await imageState(daemon.docker);
      expect(ours.map((i) => i.id)).toEqual(theirs.map((i) => i.id));
      // Not a vacuous match: something went, and the pinned images stayed.
      expect(ours.length).toBeLessThan(fleet().length);
      const left = new Set(ours.map((i) => i.id));
      expect(left.has(ids.get('eng/web:2')!)).toBe(true);
    },
    240_000,
  );

  it('the estimate equals what the engine’s usage API measured, and the data root shrank by about as much', async () => {
    const diskBefore = diskUsage(daemon.dataRoot);
    const run = await runAction({ host: daemon.host, inputs: PRUNE });
    const diskAfter = diskUsage(daemon.dataRoot);
    expect(run.code).toBe(0);
    const { estimateMethod, totals, measured } = run.report;
    const estimated: number = totals.estimatedBytes;
    const removed = (run.report.images as { state: string }[]).filter((i) => i.state === 'removed').length;
    expect(removed).toBeGreaterThan(5);
    expect(estimated).toBeGreaterThan(0);

    // In the engine's own accounting the figure is exact on every engine tested here (this test runs as
    // root, so the containerd store's content store is readable).
    expect(estimateMethod.exact).toBe(true);
    expect(estimateMethod.method).toBe(
      { classic: 'layer-graph', containerd: 'layer-graph+content', podman: 'layer-graph+metadata' }[
        daemon.imageStore
      ],
    );
    expect(measured.bytes).toBe(estimated);
    expect(totals.reclaimedBytes).toBe(estimated);

    // On disk: the data root shrinks by at least most of the estimate and at most the estimate plus the
    // stores' bookkeeping (directories, tar-split, metadata files, blocks): 64 KiB per removed image is
    // far above what any store here spends and far below a layer of this fleet.
    const freedOnDisk = diskBefore - diskAfter;
    expect(freedOnDisk).toBeGreaterThanOrEqual(0.9 * estimated);
    expect(freedOnDisk).toBeLessThanOrEqual(estimated * 1.35 + 64 * 1024 * removed);
    console.log(
      `${daemon.engine} (${daemon.version}, ${daemon.imageStore}): ${removed} images, estimated ${estimated}, ` +
        `usage API ${measured.bytes}, data root ${freedOnDisk} (${(freedOnDisk / estimated).toFixed(3)}x)`,
    );
  }, 240_000);
});

// A daemon over tcp with --tlsverify: wrong or missing certificates are clear errors naming the host.
if ((ENGINES[currentEngine()] as EngineSpec).tls) {
  describeDocker('TLS mistakes', () => {
    let tls: PrivateDaemon;
    let dir: string;
    beforeAll(async () => {
      tls = (await startDaemon('tls'))!;
      dir = mkdtempSync(path.join(tmpdir(), 'sdp-tls-'));
    }, 120_000);
    afterAll(async () => {
      await tls?.stop();
      rmSync(dir, { recursive: true, force: true });
    }, 60_000);

    const errorLine = (stdout: string) => stdout.split('\n').find((l) => l.startsWith('::error::')) ?? '';

    it('a certificate folder without the files names the folder, the files and the host', async () => {
      const empty = path.join(dir, 'empty');
      mkdirSync(empty);
      const run = await runAction({ host: tls.host, inputs: {}, env: { DOCKER_CERT_PATH: empty } });
      expect(run.code).toBe(1);
      expect(errorLine(run.stdout)).toContain(`DOCKER_CERT_PATH: "${empty}" lacks ca.pem, cert.pem, key.pem`);
      expect(errorLine(run.stdout)).toContain(tls.host);
    }, 60_000);

    it('a CA that did not sign the daemon’s certificate says to check ca.pem, naming the host', async () => {
      const wrong = path.join(dir, 'wrong-ca');
      mkdirSync(wrong);
      for (const file of ['cert.pem', 'key.pem']) {
        copyFileSync(path.join(tls.env.DOCKER_CERT_PATH, file), path.join(wrong, file));
      }
      const made = spawnSync('openssl', [
        ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=other-ca'],
        ...['-keyout', path.join(wrong, 'ca-key.pem'), '-out', path.join(wrong, 'ca.pem')],
      ]);
      expect(made.status).toBe(0);
      const run = await runAction({ host: tls.host, inputs: {}, env: { DOCKER_CERT_PATH: wrong } });
      expect(run.code).toBe(1);
      const line = errorLine(run.stdout);
      expect(line).toContain(`Could not reach a Docker daemon at ${tls.host} over TLS`);
      expect(line).toContain('ca.pem is the CA that signed it');
    }, 60_000);

    it('plain HTTP to the TLS port says to turn TLS on', async () => {
      const run = await runAction({
        host: tls.host,
        inputs: {},
        env: { DOCKER_TLS_VERIFY: '', DOCKER_CERT_PATH: '' },
      });
      expect(run.code).toBe(1);
      expect(errorLine(run.stdout)).toContain(`${tls.host} speaks TLS: set DOCKER_TLS_VERIFY=1`);
    }, 60_000);
  });
} else {
  describe.skip('TLS mistakes [needs SDP_ENGINE=docker20-tls]', () => {});
}
