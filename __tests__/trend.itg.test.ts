// The disk forecast and the re-fetch count on a real daemon whose data root is a 300 MB tmpfs of its own:
// the forecast from a history of recorded runs (files planted under the data root between them), and
// images this tool removed that come back (loaded again by ID, or a tag rebuilt as another image).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { collectRun, repoRoot, runAction, type ActionRun } from './support/action';
import { describeDocker, startDaemon, type PrivateDaemon } from './support/daemon';
import { clearDaemon, loadImages, type ImageSpec } from './support/fleet';

const MB = 1_000_000;
const LAYER = 10 * MB;
const H = 3_600_000;

let daemon: PrivateDaemon;
let stateDir: string;

const image = (name: string, tag: string, key = name): ImageSpec => ({
  name,
  tags: [tag],
  created: '2024-01-01T00:00:00Z',
  layers: [{ key: `trend-${key}`, bytes: LAYER }],
});

function run(inputs: Record<string, string>): Promise<ActionRun> {
  return runAction({
    host: daemon.host,
    inputs: { images: 'unused', 'keep-recent': '0', 'state-dir': stateDir, ...inputs },
  });
}

/** The usage history as the runs wrote it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const history = (): any => JSON.parse(readFileSync(join(stateDir, 'usage.json'), 'utf8'));

describeDocker(
  'the disk trend on a daemon with its data root on a 300 MB tmpfs',
  () => {
    beforeAll(async () => {
      daemon = (await startDaemon('trend', undefined, { dataRootFs: { type: 'tmpfs', size: '300m' } }))!;
    }, 60_000);
    afterAll(async () => daemon?.stop());

    beforeEach(async () => {
      stateDir = mkdtempSync(join(tmpdir(), 'sdp-trend-'));
      await clearDaemon(daemon.docker);
    }, 120_000);
    afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

    it('forecasts time to full from the recorded runs, the space planted between them counted, in report, summary and metrics', async () => {
      const first = await run({ mode: 'report' });
      expect(first.code).toBe(0);
      expect(first.report.trend.forecast).toBeNull();
      expect(first.summary).toContain('Disk forecast: not yet');
      // The first run's sample, as an hour ago (the test cannot wait an hour), then 40 MB planted under the
      // data root: the host filled 40 MB in an hour.
      const file = history();
      const daemonId = Object.keys(file.daemons)[0];
      const samples = file.daemons[daemonId].disk;
      expect(samples).toHaveLength(1);
      expect(samples[0].path).toBe(daemon.dataRoot);
      samples[0].ms -= H;
      writeFileSync(join(stateDir, 'usage.json'), JSON.stringify(file));
      const planted = join(daemon.dataRoot, 'planted-by-another-job');
      writeFileSync(planted, Buffer.alloc(40 * MB, 1));
      try {
        const second = await run({ mode: 'report' });
        expect(second.code).toBe(0);
        const f = second.report.trend.forecast;
        expect(f.samples).toBe(2);
        // 40 MB in (just over) an hour; the filesystem's own blocks and the daemon's few KiB besides.
        expect(f.bytesPerHour).toBeGreaterThan(39 * MB);
        expect(f.bytesPerHour).toBeLessThan(41 * MB);
        const free = statfsSync(daemon.dataRoot);
        const expected = (second.report.disk.freeBefore / f.bytesPerHour) * 3600;
        expect(Math.abs(f.secondsToFull - expected)).toBeLessThan(expected * 0.01);
        expect(f.secondsToFull).toBeLessThan(((free.bavail * free.bsize) / (39 * MB)) * 3600);
        expect(second.summary).toMatch(/Disk forecast: full in about \d+h at 4\d\.\d+ MB\/h/);
        expect(second.summary).toContain('from 2 runs over 1h');

        // The command's metrics file carries it for Prometheus (a third run: three samples).
        const metrics = join(stateDir, 'sdp.prom');
        const cli = spawn(
          process.env.SDP_NODE ?? process.execPath,
          [join(repoRoot(), 'dist', 'cli.js'), '--docker-host', daemon.host, '--metrics-file', metrics],
          {
            env: {
              PATH: process.env.PATH ?? '/usr/bin:/bin',
              HOME: stateDir,
              SAFE_DOCKER_PRUNE_STATE_DIR: stateDir,
              ...daemon.env,
            },
          },
        );
        expect((await collectRun(cli, 'the command')).code).toBe(0);
        const text = readFileSync(metrics, 'utf8');
        expect(text).toMatch(/^safe_docker_prune_disk_full_seconds\{daemon="[^"]+",resource="bytes"\} \d+$/m);
        expect(text).toMatch(/^safe_docker_prune_disk_forecast_samples\{daemon="[^"]+"\} 3$/m);
        expect(text).toMatch(/^safe_docker_prune_refetched_images\{daemon="[^"]+"\} 0$/m);
        const unaccounted = /^safe_docker_prune_unaccounted_bytes\{daemon="[^"]+"\} (\d+)$/m.exec(text);
        expect(Number(unaccounted?.[1])).toBeGreaterThanOrEqual(40 * MB);
      } finally {
        rmSync(planted, { force: true });
      }
    });
  },
  // The data root holds the images only on the classic store (as in budget.itg.test.ts), and is measured
  // only for a daemon on a unix socket (one on tcp:// may be another machine's).
  ['classic-store', 'unix-socket'],
);

describeDocker('images removed by a prune that come back', () => {
  beforeAll(async () => {
    daemon = (await startDaemon('refetch'))!;
  }, 60_000);
  afterAll(async () => daemon?.stop());
  beforeEach(() => {
    stateDir = mkdtempSync(join(tmpdir(), 'sdp-refetch-'));
  });
  afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

  it('counts removed images that come back, by ID and by a tag rebuilt, once each, with their bytes', async () => {
    const ids = await loadImages(daemon.docker, [
      image('a', 'trend/a:1'),
      image('b', 'trend/b:1'),
      image('c', 'trend/c:1'),
    ]);
    const prune = await run({ mode: 'prune' });
    expect(prune.code).toBe(0);
    expect(prune.outputs['removed-count']).toBe('3');
    expect(prune.report.trend.refetched.count).toBe(0);
    // a pulled again (the same image, the same ID); trend/b:1 built again as another image; c stays away.
    const back = await loadImages(daemon.docker, [image('a', 'trend/a:1'), image('b2', 'trend/b:1', 'b2')]);
    expect(back.get('a')).toBe(ids.get('a'));
    expect(back.get('b2')).not.toBe(ids.get('b'));

    const seen = await run({ mode: 'report' });
    expect(seen.code).toBe(0);
    const r = seen.report.trend.refetched;
    expect(r.count).toBe(2);
    expect(r.foundThisRun).toBe(2);
    // The bytes each removal freed (its own layer), as the prune's report gave them.
    const freed = Object.fromEntries(
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      prune.report.images.map((i: any) => [i.id, i.uniqueBytes]),
    );
    expect(r.bytes).toBe(freed[ids.get('a')!] + freed[ids.get('b')!]);
    expect(r.bytes).toBeGreaterThanOrEqual(2 * LAYER);
    expect(
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      r.recent.map((x: any) => [x.id, x.tag?.replace(/^localhost\//, '') ?? null]).sort(),
    ).toEqual(
      [
        [ids.get('a'), null],
        [back.get('b2'), 'trend/b:1'],
      ].sort(),
    );
    expect(seen.summary).toMatch(/Re-fetched within 7d: 2 image\(s\), [\d.]+ MB \(2 found by this run\)/);
    // Seen again by the next run: still two, none new.
    const again = await run({ mode: 'report' });
    expect(again.report.trend.refetched).toMatchObject({ count: 2, foundThisRun: 0 });
  });
});

describeDocker(
  'space under the data root the daemon does not account for (a 300 MB tmpfs of its own)',
  () => {
    beforeAll(async () => {
      daemon = (await startDaemon('unaccounted', undefined, {
        dataRootFs: { type: 'tmpfs', size: '300m' },
      }))!;
      stateDir = mkdtempSync(join(tmpdir(), 'sdp-unaccounted-'));
      await loadImages(daemon.docker, [image('u', 'trend/u:1')]);
    }, 60_000);
    afterAll(async () => {
      await daemon?.stop();
      rmSync(stateDir, { recursive: true, force: true });
    });

    it('grows by exactly the files planted there; the daemon’s figures do not move; nothing is removed', async () => {
      const first = await run({ mode: 'report' });
      expect(first.code).toBe(0);
      const planted = join(daemon.dataRoot, 'planted-by-another-job');
      writeFileSync(planted, Buffer.alloc(40 * MB, 1));
      try {
        const second = await run({ mode: 'prune', images: 'dangling' });
        expect(second.code).toBe(0);
        const u1 = first.report.disk.unaccounted;
        const u2 = second.report.disk.unaccounted;
        // The data root is a filesystem of its own: its used bytes are the filesystem's.
        expect(u1).toMatchObject({ path: daemon.dataRoot, method: 'filesystem', complete: true });
        expect(u1.accountedBytes).toBeGreaterThan(0);
        expect(u2.accountedBytes).toBe(u1.accountedBytes);
        expect(u2.unaccountedBytes - u1.unaccountedBytes).toBeGreaterThanOrEqual(40 * MB);
        expect(u2.unaccountedBytes - u1.unaccountedBytes).toBeLessThan(41 * MB);
        expect(second.summary).toMatch(/Not accounted for by the daemon under \S+: [\d.]+ MB/);
        expect(statSync(planted).size).toBe(40 * MB);
      } finally {
        rmSync(planted, { force: true });
      }
    });
  },
  ['unix-socket'],
);
