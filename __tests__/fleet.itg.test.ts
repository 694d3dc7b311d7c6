// Checks the fixture builder itself: what a fleet spec declares is what a real daemon then holds.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type Dockerode from 'dockerode';
import { describeDocker, itWith, startDaemon, type PrivateDaemon } from './support/daemon';
import {
  buildLegacy,
  clearDaemon,
  imageState,
  loadFleet,
  loadImages,
  sampleFleet,
  type Fleet,
  type ImageSpec,
} from './support/fleet';

const NOW = Date.parse('2025-06-01T12:00:00Z');
const fleet: Fleet = sampleFleet({ now: NOW });
let daemon: PrivateDaemon;
let docker: Dockerode;
let ids: Map<string, string>;

/** Bytes of a layer as the spec declares it. */
const layerBytes = (l: ImageSpec['layers'][number]) =>
  l.bytes ?? (l.files ?? []).reduce((n, f) => n + f.data.length, 0);

describeDocker(
  'fleet fixtures on a private daemon',
  () => {
    beforeAll(async () => {
      daemon = (await startDaemon('fleet'))!;
      docker = daemon.docker;
      ids = await loadFleet(docker, fleet);
    }, 120_000);
    afterAll(async () => daemon?.stop(), 60_000);

    it('loads every image with its tags, creation time and labels', async () => {
      const listed = new Map((await docker.listImages({ all: true })).map((i) => [i.Id, i]));
      for (const [index, spec] of fleet.images.entries()) {
        const id = ids.get(`#${index}`)!;
        spec.tags.forEach((tag) => expect(ids.get(tag)).toBe(id));
        const image = listed.get(id)!;
        expect(image).toBeDefined();
        expect(image.Created).toBe(Math.floor(+new Date(spec.created) / 1000));
        expect(image.Labels ?? {}).toEqual(spec.labels ?? {});
        expect((image.RepoTags ?? []).filter((t) => t !== '<none>:<none>').sort()).toEqual(
          [...spec.tags].sort(),
        );
      }
      // One image tagged in two repositories.
      expect(ids.get('sample/web:latest')).toBe(ids.get('registry.example.com/sample/web:v4'));
    });

    it('leaves dangling images where the spec has no tags', async () => {
      const dangling = (await docker.listImages({ filters: { dangling: ['true'] } })).map((i) => i.Id).sort();
      expect(dangling).toEqual([ids.get('sample-dangling-old'), ids.get('sample-dangling-recent')].sort());
    });

    // The containerd image store sizes layers as unpacked on disk (rounded to blocks), not as their content.
    itWith(
      ['classic-store'],
      'shares layers by common prefix: LayersSize counts each layer chain once',
      async () => {
        const chains = new Map<string, number>();
        for (const spec of fleet.images) {
          spec.layers.forEach((layer, i) =>
            chains.set(
              spec.layers
                .slice(0, i + 1)
                .map((l) => l.key)
                .join('/'),
              layerBytes(layer),
            ),
          );
        }
        const df = (await docker.df()) as { LayersSize: number; Images: { Id: string; Size: number }[] };
        const sumOfSizes = df.Images.reduce((n, i) => n + i.Size, 0);
        expect(df.LayersSize).toBe([...chains.values()].reduce((a, b) => a + b, 0));
        expect(df.LayersSize).toBeLessThan(sumOfSizes / 2);
        // An image's Size is its layers' bytes.
        const web = fleet.images.find((i) => i.tags.includes('sample/web:v1'))!;
        expect(df.Images.find((i) => i.Id === ids.get('sample/web:v1'))?.Size).toBe(
          web.layers.reduce((n, l) => n + layerBytes(l), 0),
        );
      },
    );

    // The containerd image store sizes layers as unpacked on disk (rounded to blocks), not as their content.
    itWith(
      ['classic-store'],
      'writes history with a sized entry per layer and metadata-only entries of size 0',
      async () => {
        const spec = fleet.images.find((i) => i.tags.includes('sample/tool:latest'))!;
        const history = (await docker.getImage('sample/tool:latest').history()) as {
          Size: number;
          CreatedBy: string;
        }[];
        expect(history).toHaveLength(spec.layers.length + spec.emptyHistorySteps!);
        expect(history.filter((h) => h.Size > 0).map((h) => h.Size)).toEqual(
          spec.layers.map(layerBytes).reverse(),
        );
        expect(history.filter((h) => h.Size === 0)).toHaveLength(spec.emptyHistorySteps!);
      },
    );

    it('creates containers in each state', async () => {
      const containers = await docker.listContainers({ all: true });
      const states = Object.fromEntries(containers.map((c) => [c.Names[0].slice(1), [c.State, c.ImageID]]));
      for (const spec of fleet.containers)
        expect(states[spec.name]).toEqual([spec.state, ids.get(spec.image)]);
    });

    it('gives the same IDs on every load, and two daemons side by side hold the same images', async () => {
      expect(await loadImages(docker, fleet.images)).toEqual(ids);
      const other = (await startDaemon('fleet2'))!;
      try {
        await loadImages(other.docker, fleet.images);
        expect(await imageState(other.docker)).toEqual(await imageState(docker));
      } finally {
        await other.stop();
      }
    }, 60_000);

    it('builds with the legacy builder, leaving untagged parent images', async () => {
      const base = ids.get('sample/base:1')!;
      const id = await buildLegacy(docker, { from: 'sample/base:1', steps: 3, tag: 'legacy/app:1' });
      const all = new Map((await docker.listImages({ all: true })).map((i) => [i.Id, i]));
      const chain: string[] = [];
      for (let at = all.get(id)?.ParentId; at && at !== base; at = all.get(at)?.ParentId) chain.push(at);
      // FROM + 3 COPY steps: the last step is the tagged image, the two before it untagged parents.
      expect(chain).toHaveLength(2);
      chain.forEach((parent) =>
        // Untagged: `<none>:<none>` up to API 1.44, `[]` from 1.45.
        expect((all.get(parent)?.RepoTags ?? []).filter((t) => t !== '<none>:<none>')).toEqual([]),
      );
      const topLevel = (await docker.listImages()).map((i) => i.Id);
      expect(topLevel).toContain(id);
      chain.forEach((parent) => expect(topLevel).not.toContain(parent));
    }, 60_000);

    it('clears the daemon', async () => {
      await clearDaemon(docker);
      expect(await imageState(docker)).toEqual([]);
      expect(await docker.listContainers({ all: true })).toEqual([]);
    }, 60_000);
  },
  ['run-containers'],
);
