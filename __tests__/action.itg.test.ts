// The bundled action (node dist/index.js, as the runner starts it) against a private Docker daemon
// filled with a fleet built on the spot. Every test here owns the daemon it prunes.
import { afterAll, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { runAction } from './support/action';
import { describeDocker, itWith, startDaemon, type PrivateDaemon } from './support/daemon';
import {
  buildLegacy,
  clearDaemon,
  imageState,
  loadFleet,
  loadImages,
  sampleFleet,
  type Fleet,
} from './support/fleet';

const NOW = Date.now();
const fleet: Fleet = sampleFleet({ now: NOW });
const P = 'sample';
/** A date 60 days back: between the sample fleet's old and recent dangling images. */
const DAY60 = new Date(NOW - 60 * 86_400_000).toISOString().slice(0, 10);

let daemon: PrivateDaemon;
/** IDs of loaded images: the same spec gives the same ID on every load, unlike legacy builds. */
let loadedIds = new Set<string>();

/** The sample fleet plus legacy-builder images: one tagged, one dangling, both with untagged parents. */
async function buildFleet(): Promise<void> {
  await clearDaemon(daemon.docker);
  const ids = await loadFleet(daemon.docker, fleet);
  loadedIds = new Set(ids.values());
  // Untagged parents are the classic store's: on the containerd store `docker load` of a tag a legacy
  // build holds fails ("image might be filtered out"), so the legacy part of the fleet is classic-only.
  const legacy = daemon.imageStore === 'classic';
  if (legacy) {
    await buildLegacy(daemon.docker, { from: `${P}/base:1`, steps: 3, tag: 'legacy/app:1' });
    await buildLegacy(daemon.docker, { from: `${P}/base:1`, steps: 2, tag: 'legacy/app:2' });
  }
  // Moving legacy/app:1 to another image leaves the legacy build dangling, parents and all.
  // A family whose shared base only its own images use: when they all go, the base goes (once).
  const family = [1, 2, 3].map((n) => ({
    tags: [`family/app:${n}`],
    layers: [
      { key: 'family-base', bytes: 150_000 },
      { key: `family-${n}`, bytes: 10_000 * n },
    ],
    created: new Date(NOW - (40 + n) * 86_400_000),
  }));
  const moved = await loadImages(
    daemon.docker,
    [
      {
        tags: ['legacy/app:1'],
        layers: [{ key: 'moved', bytes: 1000 }],
        created: new Date(NOW - 86_400_000),
      },
      ...family,
    ],
    { parallel: legacy ? 3 : 1 },
  );
  moved.forEach((id) => loadedIds.add(id));
}

/** What is on the daemon, comparable across two builds of the fleet (legacy IDs differ per build). */
async function state(): Promise<string[]> {
  return (await imageState(daemon.docker))
    .map((i) => `${loadedIds.has(i.id) ? i.id.slice(7, 19) : 'legacy'} ${i.tags.join(',') || '<untagged>'}`)
    .sort();
}

describeDocker(
  'the action on a real daemon',
  () => {
    beforeAll(async () => {
      daemon = (await startDaemon('action'))!;
    }, 60_000);
    afterAll(async () => daemon?.stop(), 60_000);
    beforeEach(buildFleet, 120_000);

    const run = (inputs: Record<string, string>, env: Record<string, string> = {}) =>
      runAction({ host: daemon.host, inputs, env });

    it('report mode changes nothing and gives every image a decision and a reason', async () => {
      const before = await state();
      const result = await run({ mode: 'report', images: 'unused', 'keep-recent': '1', protect: `${P}/db` });
      expect(result.code).toBe(0);
      expect(await state()).toEqual(before);

      const images = result.report.images as {
        tags: string[];
        state: string;
        reason: string;
        detail: string;
      }[];
      expect(images.length).toBe((await imageState(daemon.docker)).length);
      const byTag = (tag: string) => images.find((i) => i.tags.includes(tag));
      expect(byTag(`${P}/web:v3`)).toMatchObject({ state: 'kept', reason: 'in-use' });
      expect(byTag(`${P}/web:v3`)?.detail).toContain(`${P}-running`);
      expect(byTag(`${P}/worker:v2`)).toMatchObject({ reason: 'in-use' }); // exited container
      expect(byTag(`${P}/db:16`)).toMatchObject({ reason: 'protected' });
      expect(byTag(`${P}/db:15`)).toMatchObject({ reason: 'in-use' }); // created container
      expect(byTag(`${P}/web:v4`)).toMatchObject({ reason: 'keep-recent' });
      expect(byTag(`${P}/web:v1`)).toMatchObject({ state: 'would-remove', reason: 'remove' });
      expect(byTag(`${P}/base:1`)).toMatchObject({ reason: 'keep-recent' }); // newest of its repository
      // Legacy-builder parents (classic store): untagged ones are not candidates; they go with their last child.
      if (daemon.imageStore === 'classic') {
        expect(images.filter((i) => i.tags.length === 0 && i.reason === 'parent').length).toBeGreaterThan(0);
        expect(
          images.find((i) => i.tags.length === 0 && i.state === 'would-remove' && i.reason === 'parent'),
        ).toBeTruthy();
      }

      const wouldRemove = images.filter((i) => i.state === 'would-remove').length;
      expect(result.outputs['removed-count']).toBe(String(wouldRemove));
      expect(result.outputs['kept-count']).toBe(String(images.length - wouldRemove));
      expect(result.outputs['reclaimed-bytes']).toBe('0');
      expect(Number(result.outputs['estimated-bytes'])).toBeGreaterThan(0);
      // The range's outputs: the low end is estimated-bytes, the high end is no lower.
      expect(result.outputs['estimated-bytes-low']).toBe(result.outputs['estimated-bytes']);
      expect(Number(result.outputs['estimated-bytes-high'])).toBeGreaterThanOrEqual(
        Number(result.outputs['estimated-bytes']),
      );
      // The headline counts the untagged parents that go with an image apart, as Docker's prune does.
      const parents = images.filter((i) => i.state === 'would-remove' && i.reason === 'parent').length;
      expect(result.summary).toContain(
        parents > 0
          ? `Would remove ${wouldRemove - parents} image(s) (+${parents} untagged parent image(s))`
          : `Would remove ${wouldRemove} image(s)`,
      );
      expect(result.summary).toContain(`${P}/web:v1`);
    }, 120_000);

    // With nothing protected, the images left equal those Docker's own prune leaves on an identical fleet,
    // and the estimate made before removing equals what the prune measured.
    // Docker's `until` on the containerd store counts from when the image was loaded or pulled here, not
    // from its creation (the classic store's rule, and older-than's): those two cases need the classic store.
    const cases: [string, { all?: boolean; olderThan?: string; until?: string }][] = [
      ['dangling', {}],
      ['unused', { all: true }],
      ['unused', { all: true, olderThan: '30d', until: '720h' }],
      ['dangling', { olderThan: DAY60, until: DAY60 }],
    ];
    for (const [images, opts] of cases) {
      itWith(
        opts.until ? ['classic-store'] : [],
        `images=${images} ${JSON.stringify(opts)} leaves what docker image prune leaves`,
        async () => {
          const result = await run({
            mode: 'prune',
            images,
            'keep-recent': '0',
            'older-than': opts.olderThan ?? '',
          });
          expect(result.code).toBe(0);
          const ours = await state();

          await buildFleet();
          const filters: Record<string, string[]> = { dangling: [opts.all ? 'false' : 'true'] };
          if (opts.until) filters.until = [opts.until];
          await daemon.docker.pruneImages({ filters });
          expect(ours).toEqual(await state());

          const estimated = Number(result.outputs['estimated-bytes']);
          const reclaimed = Number(result.outputs['reclaimed-bytes']);
          expect(reclaimed).toBeGreaterThan(0);
          expect(Math.abs(estimated - reclaimed)).toBeLessThanOrEqual(0.01 * reclaimed);
          expect(result.report.images.filter((i: { state: string }) => i.state === 'removed').length).toBe(
            Number(result.outputs['removed-count']),
          );
        },
        240_000,
      );
    }

    it('prune never removes protected, in-use or recent images, and warns about entries that match nothing', async () => {
      const result = await run({
        mode: 'prune',
        images: 'unused',
        'keep-recent': '1',
        protect: `${P}/web:v1\nlabel=com.example.role=worker, nothing/matches:*`,
      });
      expect(result.code).toBe(0);
      const tags = (await imageState(daemon.docker)).flatMap((i) => i.tags);
      for (const kept of [
        `${P}/web:v1`,
        `${P}/worker:v1`,
        `${P}/web:v3`,
        `${P}/db:15`,
        `${P}/web:v4`,
        `${P}/db:16`,
      ]) {
        expect(tags).toContain(kept);
      }
      expect(tags).not.toContain(`${P}/web:v2`);
      expect(tags).toContain(`${P}/solo:1`); // the newest (only) image of its repository
      // With protection and keep-recent too, the estimate made beforehand is what the prune freed.
      const estimated = Number(result.outputs['estimated-bytes']);
      const reclaimed = Number(result.outputs['reclaimed-bytes']);
      expect(reclaimed).toBeGreaterThan(0);
      expect(Math.abs(estimated - reclaimed)).toBeLessThanOrEqual(0.01 * reclaimed);
      expect(result.stdout).toContain('::warning::protect entry "nothing/matches:*" matched nothing');
    }, 120_000);

    it('rejects bad input by name before touching the daemon', async () => {
      const before = await state();
      for (const [input, value, message] of [
        ['older-than', '7 days', 'older-than: "7 days"'],
        ['mode', 'delete', 'mode: "delete"'],
        ['keep-recent', '-1', 'keep-recent: "-1"'],
        ['protect', 'label=', 'protect: "label="'],
        ['protect', 'sha256:xyz', 'protect: "sha256:xyz"'],
      ]) {
        const result = await run({ mode: 'prune', images: 'unused', 'keep-recent': '0', [input]: value });
        expect(result.code).toBe(1);
        expect(result.stdout).toContain(`::error::${message}`);
      }
      expect(await state()).toEqual(before);
    }, 120_000);

    it('on pull requests, report mode leaves at most 10 notices naming what would be removed', async () => {
      const result = await run(
        { images: 'unused', 'keep-recent': '0' },
        { GITHUB_EVENT_NAME: 'pull_request' },
      );
      const notices = result.stdout.split('\n').filter((l) => l.startsWith('::notice'));
      expect(notices.length).toBeGreaterThan(0);
      expect(notices.length).toBeLessThanOrEqual(10);
      expect(notices.join('\n')).toContain(`${P}/web:v1`);
    }, 120_000);
  },
  ['run-containers', 'legacy-build'],
);
