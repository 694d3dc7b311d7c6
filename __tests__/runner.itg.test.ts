// Runner-built action images (`<6 hex>:<32 hex>`, as the Actions runner tags the images it builds for
// Dockerfile container actions) on a real daemon: loaded with exactly such tags, next to look-alikes, one
// in use by a created container and one protected.
import { afterAll, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { runAction } from './support/action';
import { describeDocker, startDaemon, type PrivateDaemon } from './support/daemon';
import { busyboxLayer, clearDaemon, createContainers, imageState, loadImages } from './support/fleet';

const NOW = Date.now();
const DAY = 86_400_000;
const ago = (days: number) => new Date(NOW - days * DAY);
const step = (digit: string) => digit.repeat(32);
const RUNNER = {
  old: `d8e1f2:${step('1')}`,
  older: `d8e1f2:${step('2')}`,
  fresh: `d8e1f2:${step('3')}`,
  used: `d8e1f2:${step('4')}`,
  guarded: `abcdef:${step('5')}`,
};
const LOOKALIKE = {
  eightHex: `d8e1f2a0:${step('6')}`,
  shortTag: `d8e1f2:${step('7').slice(1)}`,
  upperTag: `d8e1f2:${'ABCDEF0123456789'.repeat(2)}`,
  named: `d8e1f2:latest`,
};

let daemon: PrivateDaemon;
let ids = new Map<string, string>();

async function buildHost(): Promise<void> {
  await clearDaemon(daemon.docker);
  const base = { key: 'action-base', bytes: 400_000 };
  const specs = [
    ...Object.entries(RUNNER).map(([name, tag], i) => ({
      tags: [tag],
      // Built FROM one base, each step adds its own layer.
      layers: [busyboxLayer(), base, { key: `runner-${name}`, bytes: 10_000 * (i + 1) }],
      created: name === 'fresh' ? ago(0.01) : ago(3 + i),
    })),
    ...Object.entries(LOOKALIKE).map(([name, tag], i) => ({
      tags: [tag],
      layers: [busyboxLayer(), { key: `lookalike-${name}`, bytes: 5_000 * (i + 1) }],
      created: ago(30 + i),
    })),
  ];
  ids = await loadImages(daemon.docker, specs);
  await createContainers(daemon.docker, [{ name: 'job-step', image: RUNNER.used, state: 'created' }]);
}

/** Tags on the daemon, without Podman's localhost/ prefix. */
async function tagsLeft(): Promise<string[]> {
  return (await imageState(daemon.docker))
    .flatMap((i) => i.tags.map((t) => t.replace(/^localhost\//, '')))
    .sort();
}

describeDocker('runner-built action images on a real daemon', () => {
  beforeAll(async () => {
    daemon = (await startDaemon('runner'))!;
  }, 60_000);
  afterAll(async () => daemon?.stop(), 60_000);
  beforeEach(buildHost, 120_000);

  const run = (inputs: Record<string, string>) => runAction({ host: daemon.host, inputs });

  it('prune with the defaults (images: dangling) removes the unused runner images and nothing else', async () => {
    const result = await run({ mode: 'prune', protect: 'abcdef:*', 'older-than': '1d' });
    expect(result.code).toBe(0);
    expect(await tagsLeft()).toEqual(
      [RUNNER.fresh, RUNNER.used, RUNNER.guarded, ...Object.values(LOOKALIKE)].sort(),
    );
    const byTag = Object.fromEntries(
      (result.report.images as { tags: string[]; state: string; reason: string; class: string }[]).map(
        (i) => [i.tags[0].replace(/^localhost\//, ''), `${i.state}:${i.reason}:${i.class}`],
      ),
    );
    expect(byTag).toEqual({
      [RUNNER.old]: 'removed:remove:runner-image',
      [RUNNER.older]: 'removed:remove:runner-image',
      [RUNNER.fresh]: 'kept:too-recent:runner-image',
      [RUNNER.used]: 'kept:in-use:runner-image',
      [RUNNER.guarded]: 'kept:protected:runner-image',
      [LOOKALIKE.eightHex]: 'kept:tagged:image',
      [LOOKALIKE.shortTag]: 'kept:tagged:image',
      [LOOKALIKE.upperTag]: 'kept:tagged:image',
      [LOOKALIKE.named]: 'kept:tagged:image',
    });
    // Their own step layers go; the shared base stays for the runner images that stay. Exact layer bytes
    // on the classic store; the other stores add content-store blobs or metadata to the figure.
    if (daemon.imageStore === 'classic') {
      expect(result.report.runnerImages).toEqual({ count: 2, estimatedBytes: 10_000 + 20_000 });
      expect(result.summary).toContain('runner-built action images: 2, 30.0 kB');
    } else {
      expect(result.report.runnerImages.count).toBe(2);
      expect(result.report.runnerImages.estimatedBytes).toBeGreaterThanOrEqual(30_000);
      expect(result.summary).toMatch(/runner-built action images: 2, \d/);
    }
    expect(result.outputs['removed-count']).toBe('2');
  });

  it('report mode says what it would remove; keep-recent does not keep them; images: none does not stop them', async () => {
    const before = await tagsLeft();
    const result = await run({ mode: 'report', images: 'none', 'keep-recent': '10' });
    expect(result.code).toBe(0);
    expect(await tagsLeft()).toEqual(before);
    const wouldGo = (result.report.images as { tags: string[]; state: string }[])
      .filter((i) => i.state === 'would-remove')
      .map((i) => i.tags[0].replace(/^localhost\//, ''))
      .sort();
    expect(wouldGo).toEqual([RUNNER.old, RUNNER.older, RUNNER.fresh, RUNNER.guarded].sort());
    expect(result.summary).toMatch(/runner-built action images: 4, /);
  });

  it('runner-images: none leaves them alone', async () => {
    const before = await tagsLeft();
    const result = await run({ mode: 'prune', 'runner-images': 'none', 'keep-recent': '0' });
    expect(result.code).toBe(0);
    expect(await tagsLeft()).toEqual(before);
    expect(result.report.runnerImages).toEqual({ count: 0, estimatedBytes: 0 });
    expect(result.summary).not.toContain('runner-built action images');
    expect(ids.size).toBeGreaterThan(0);
  });
});
