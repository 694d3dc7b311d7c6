// The content a removal frees, counted from the API's sizes where the content store cannot be read (an
// unprivileged user in the docker group): Docker 29.5+'s SharedSize counts shared content blobs.
import { describe, expect, it } from '@jest/globals';
import type { DockerApi } from '../src/engine/docker';
import { targetsOf, withUniqueContent, type Target } from '../src/engine/inventory';
import {
  bytesFreed,
  chainsAllSeen,
  estimateMethod,
  sharedAmongRemovedOnly,
  sharedSizeCountsContent,
  uniqueContent,
  type ContentSizing,
} from '../src/policy/estimate';
import type { EngineInfo, ImageInfo } from '../src/types';
import { imageInfo } from './support/objects';

const MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';

/**
 * The sample fleet (support/fleet.ts) on Docker 29.7.2's containerd store, as measured: tag, layers (diff
 * IDs, named), layer sizes from the history, the list's Size and SharedSize (`/system/df`'s were the same),
 * and the content only that image references, read from the content store as root.
 */
const MEASURED: [string, string[], number[], number, number, number][] = [
  ['web:latest', ['L0', 'L1', 'L2', 'L3'], [1990656, 311296, 110592, 28672], 4854581, 4801536, 24373],
  ['worker:v3', ['L0', 'L1', 'L4'], [1990656, 311296, 24576], 4632040, 4588544, 18920],
  ['dangling-a', ['L0', 'L1', 'L2', 'L5'], [1990656, 311296, 110592, 28672], 4854587, 4801536, 24379],
  ['web:v3', ['L0', 'L1', 'L2', 'L6'], [1990656, 311296, 110592, 28672], 4854581, 4801536, 24373],
  ['worker:v2', ['L0', 'L1', 'L7'], [1990656, 311296, 24576], 4632040, 4588544, 18920],
  ['tool:latest', ['L0', 'L8'], [1990656, 61440], 4090244, 3975168, 53636],
  ['web:v2', ['L0', 'L1', 'L2', 'L9'], [1990656, 311296, 110592, 28672], 4854581, 4801536, 24373],
  ['worker:v1', ['L0', 'L1', 'L10'], [1990656, 311296, 24576], 4632040, 4588544, 18920],
  ['db:16', ['L11', 'L12'], [208896, 61440], 525978, 411136, 53402],
  ['web:v1', ['L0', 'L1', 'L2', 'L13'], [1990656, 311296, 110592, 28672], 4854581, 4801536, 24373],
  ['dangling-b', ['L0', 'L1', 'L2', 'L14'], [1990656, 311296, 110592, 28672], 4854587, 4801536, 24379],
  ['base:1', ['L0'], [1990656], 3976044, 3975168, 876],
  ['db:15', ['L11', 'L15'], [208896, 61440], 525978, 411136, 53402],
  ['solo:1', ['L16'], [73728], 140595, 0, 66867],
];

const DOCKER_29: Pick<EngineInfo, 'name' | 'version' | 'imageStore'> = {
  name: 'docker',
  version: '29.7.2',
  imageStore: 'containerd',
};

/** An image as the inventory has it before its content is split: all of its content unknown. */
function listed(tag: string, layers: string[], sizes: number[], size: number): ImageInfo {
  return imageInfo({
    id: `sha256:${tag}`,
    repoTags: tag.startsWith('dangling') ? [] : [tag],
    size,
    layers: layers.map((l) => `sha256:${l}`),
    layerSizes: sizes,
    contentSize: size - sizes.reduce((n, s) => n + s, 0),
  });
}

const fleet = MEASURED.map(([tag, layers, sizes, size]) => listed(tag, layers, sizes, size));
const df = {
  Images: MEASURED.map(([tag, , , Size, SharedSize]) => ({ Id: `sha256:${tag}`, Size, SharedSize })),
};
const manifests: Target[] = fleet.map(() => ({ type: MANIFEST }));
const split = (engine = DOCKER_29, types = manifests) => withUniqueContent(fleet, engine, df, types);

/** The plan's removal of `gone` (by tag) from the split fleet. */
function removal(images: ImageInfo[], goneTags: (tag: string) => boolean) {
  const gone = images.filter((i) => goneTags(i.id.slice('sha256:'.length)));
  const remaining = images.filter((i) => !gone.includes(i));
  return {
    gone,
    remaining,
    bytes: bytesFreed(gone, remaining),
    method: estimateMethod('containerd', gone, remaining, true),
  };
}

describe('content counted from Size and SharedSize (Docker 29.5+, content store unreadable)', () => {
  it('each image’s unique content is what the content store holds for it alone (measured on 29.7.2)', () => {
    const images = split();
    MEASURED.forEach(([tag, , , , , unique], i) => {
      expect([tag, images[i].blobs]).toEqual([tag, [{ key: `unique-content:sha256:${tag}`, size: unique }]]);
      expect(images[i].contentSize).toBe(fleet[i].contentSize! - unique);
      expect(images[i].contentSharedOnly).toBe(true);
    });
  });

  it('the dangling set: exact, and what the prune freed (106,102 bytes measured; the snapshots alone 57,344)', () => {
    const { bytes, method } = removal(split(), (tag) => tag.startsWith('dangling'));
    expect(method).toMatchObject({ method: 'layer-graph+content-api', exact: true });
    expect(method.low).toBeUndefined();
    expect(bytes).toBe(106_102);
  });

  it('the unused set (containers on web:v3, worker:v2, db:15): exact, 723,618 bytes as measured', () => {
    const kept = new Set(['web:v3', 'worker:v2', 'db:15']);
    const { bytes, method } = removal(split(), (tag) => !kept.has(tag));
    expect(method).toMatchObject({ method: 'layer-graph+content-api', exact: true });
    expect(bytes).toBe(723_618);
  });

  it('a layer shared among removed images only: a range, its low end the unique content', () => {
    // Every web image goes, the workers stay: the web-deps layer (L2) is in removed images alone.
    const { gone, remaining, bytes, method } = removal(
      split(),
      (tag) => tag.startsWith('web') || tag.startsWith('dangling'),
    );
    expect(sharedAmongRemovedOnly(gone, remaining)).toEqual(['sha256:L2']);
    expect(method).toMatchObject({ method: 'layer-graph+content-bounded', exact: false, low: bytes });
    const shared = gone.reduce((n, i) => n + i.contentSize!, 0);
    expect(method.high).toBe(bytes + shared);
    expect(method.note).toContain('alone references');
  });

  it('older engines count only snapshots in SharedSize: their content stays unknown (a range)', () => {
    for (const version of ['28.5.2+dfsg4', '26.1.5+dfsg1', '29.4.3']) {
      const images = split({ ...DOCKER_29, version });
      expect(images).toEqual(fleet);
      const { method } = removal(images, (tag) => tag.startsWith('dangling'));
      expect(method).toMatchObject({ method: 'layer-graph+content-bounded', exact: false });
      expect(method.note).toContain('whole content size');
    }
  });

  it('an index target whose platforms are unknown is left out: that removal stays a range', () => {
    const types = fleet.map((i) => ({ type: i.id === 'sha256:dangling-a' ? INDEX : MANIFEST, size: 289 }));
    const images = split(DOCKER_29, types);
    expect(images.find((i) => i.id === 'sha256:dangling-a')!.blobs).toBeUndefined();
    expect(removal(images, (tag) => tag.startsWith('dangling')).method.exact).toBe(false);
  });

  it('two index targets (one platform each) beside the fleet, as measured on 29.7.2: exact', () => {
    // idx-a and idx-b share their first layer; the content only each has, read as root: 23,240 bytes,
    // of which 289 its index blob (not in Size).
    const idx = ['idx-a', 'idx-b'].map((tag) => listed(tag, ['I0', `I1-${tag}`], [57344, 24576], 156583));
    const all = [...fleet, ...idx];
    const withIdx = {
      Images: [...df.Images, ...idx.map((i) => ({ Id: i.id, Size: 156583, SharedSize: 109056 }))],
    };
    const targets: Target[] = [
      ...manifests,
      ...idx.map(() => ({ type: INDEX, size: 289, presentManifests: 1 })),
    ];
    const images = withUniqueContent(all, DOCKER_29, withIdx, targets);
    expect(images.slice(-2).map((i) => i.blobs![0].size)).toEqual([23_240, 23_240]);
    const { bytes, method } = removal(images, (tag) => tag === 'idx-a');
    expect(method).toMatchObject({ method: 'layer-graph+content-api', exact: true });
    expect(bytes).toBe(24_576 + 23_240);
  });

  it('an index with other platforms here (chains the inspect does not show): a range, the low end counted', () => {
    const solo = (presentManifests?: number) =>
      split(
        DOCKER_29,
        fleet.map((i) => (i.id === 'sha256:solo:1' ? { type: INDEX, presentManifests } : { type: MANIFEST })),
      );
    for (const present of [2, undefined]) {
      const images = solo(present);
      expect(images[0]).toMatchObject({ contentSharedOnly: false });
      const { bytes, method } = removal(images, (tag) => tag.startsWith('dangling'));
      expect([present, method.method, method.low]).toEqual([present, 'layer-graph+content-bounded', bytes]);
      expect(bytes).toBe(106_102);
    }
    // One platform here: its chains are those the inspect shows, and the dangling set is exact again.
    expect(removal(solo(1), (tag) => tag.startsWith('dangling')).method.exact).toBe(true);
  });

  it('a removed image without layers is not counted exact (it could share its config unseen)', () => {
    const images = split();
    const layerless = { ...images[13], layers: [], layerSizes: [] };
    const method = estimateMethod('containerd', [layerless], images.slice(0, 13), true);
    expect(method.exact).toBe(false);
  });
});

describe('uniqueContent: only where Size − SharedSize − own snapshots is sound', () => {
  const a: ContentSizing = {
    id: 'a',
    layers: ['x', 'y'],
    layerSizes: [100, 10],
    layerSizesExact: true,
    size: 110 + 50,
    targetType: MANIFEST,
  };
  const b: ContentSizing = { ...a, id: 'b', layers: ['x', 'z'], layerSizes: [100, 20], size: 120 + 60 };
  // Content: a has 50 bytes (20 its own), b 60 (30 its own); they share 30 bytes of blobs and snapshot x.
  const sizes = (over: Partial<Record<'a' | 'b', { size: number; shared: number }>> = {}) =>
    new Map(Object.entries({ a: { size: 160, shared: 130 }, b: { size: 180, shared: 130 }, ...over }));

  it('sizes each image’s own content', () => {
    expect(uniqueContent([a, b], sizes())).toEqual(
      new Map([
        ['a', { own: 20, shared: 30 }],
        ['b', { own: 30, shared: 30 }],
      ]),
    );
  });

  it('an index with one platform here: its own blob, which Size leaves out, is added', () => {
    const indexed = { ...a, targetType: INDEX, targetSize: 289, presentManifests: 1 };
    expect(uniqueContent([indexed, b], sizes()).get('a')).toEqual({ own: 20 + 289, shared: 30 });
    for (const other of [
      { presentManifests: 2 },
      { presentManifests: undefined },
      { targetSize: undefined },
    ]) {
      expect(uniqueContent([{ ...indexed, ...other }, b], sizes()).has('a')).toBe(false);
    }
  });

  it('nothing when /system/df lists other images than the inventory (hidden intermediates, a race)', () => {
    expect(uniqueContent([a, b], new Map([['a', { size: 160, shared: 130 }]]))).toEqual(new Map());
    expect(uniqueContent([a], sizes())).toEqual(new Map());
  });

  it('leaves out an image it cannot size soundly', () => {
    const cases: [string, ContentSizing, { size: number; shared: number }?][] = [
      ['an index target', { ...a, targetType: INDEX }],
      ['no target type (API before 1.46)', { ...a, targetType: undefined }],
      ['guessed layer sizes', { ...a, layerSizesExact: false }],
      ['a repeated diff ID', { ...a, layers: ['x', 'x'] }],
      ['Size changed between the list and df', a, { size: 161, shared: 130 }],
      ['SharedSize unknown (-1)', a, { size: 160, shared: -1 }],
      ['a negative result', a, { size: 160, shared: 160 }],
      ['more than its content', a, { size: 160, shared: 0 }],
    ];
    for (const [why, image, d] of cases) {
      expect([why, uniqueContent([image, b], sizes(d ? { a: d } : {})).has('a')]).toEqual([why, false]);
    }
  });
});

describe('chainsAllSeen', () => {
  it('manifest targets, and indexes with one platform here; not an index whose platforms are unknown', () => {
    expect(chainsAllSeen([{ targetType: MANIFEST }, { targetType: INDEX, presentManifests: 1 }])).toBe(true);
    expect(chainsAllSeen([{ targetType: MANIFEST }, { targetType: INDEX, presentManifests: 2 }])).toBe(false);
    expect(chainsAllSeen([{ targetType: INDEX }])).toBe(false);
    expect(chainsAllSeen([{}])).toBe(false);
  });
});

describe('sharedSizeCountsContent', () => {
  const cases: [string, 'classic' | 'containerd', boolean][] = [
    ['29.7.2', 'containerd', true],
    ['29.5.0', 'containerd', true],
    ['30.1.0', 'containerd', true],
    ['29.4.3', 'containerd', false],
    ['28.5.2+dfsg4', 'containerd', false],
    ['26.1.5+dfsg1', 'containerd', false],
    ['29.7.2', 'classic', false],
  ];
  it.each(cases)('Docker %s, %s store: %s', (version, imageStore, counts) => {
    expect(sharedSizeCountsContent({ name: 'docker', version, imageStore })).toBe(counts);
  });

  it('never Podman', () => {
    expect(sharedSizeCountsContent({ name: 'podman', version: '29.7.2', imageStore: 'containerd' })).toBe(
      false,
    );
  });
});

describe('targetsOf: the manifests asked for only where an index is listed', () => {
  /** A daemon that answers the list with manifests, and records what it was asked. */
  function daemon(manifests: Record<string, { Kind: string; Size: { Content: number } }[]>) {
    const asked: [string, unknown][] = [];
    const api = {
      host: 'unix:///fake.sock',
      request: async <T>(_method: string, path: string, query?: Record<string, unknown>) => {
        asked.push([path, query]);
        return Object.entries(manifests).map(([Id, Manifests]) => ({ Id, Manifests })) as T;
      },
    } as unknown as DockerApi;
    return { api, asked };
  }
  const engine = { ...DOCKER_29, apiVersion: '1.55', id: 'x' };
  const summary = (Id: string, mediaType: string) => ({ Id, Created: 0, Size: 0, Descriptor: { mediaType } });
  const image = (id: string) => ({ ...fleet[0], id });

  it('no request when every target is a manifest', async () => {
    const { api, asked } = daemon({});
    const targets = await targetsOf(api, engine, [image('a')], [summary('a', MANIFEST)]);
    expect(targets).toEqual([{ type: MANIFEST }]);
    expect(asked).toEqual([]);
  });

  it('an index: one list with manifests, counting image manifests with content here', async () => {
    const { api, asked } = daemon({
      a: [{ Kind: 'image', Size: { Content: 10 } }],
      b: [
        { Kind: 'image', Size: { Content: 10 } },
        { Kind: 'image', Size: { Content: 0 } },
        { Kind: 'attestation', Size: { Content: 5 } },
      ],
      c: [
        { Kind: 'image', Size: { Content: 10 } },
        { Kind: 'image', Size: { Content: 7 } },
      ],
    });
    const targets = await targetsOf(
      api,
      engine,
      [image('a'), image('b'), image('c')],
      [summary('a', MANIFEST), summary('b', INDEX), summary('c', INDEX)],
    );
    expect(targets.map((t) => t.presentManifests)).toEqual([1, 1, 2]);
    expect(asked).toEqual([['/images/json', { all: true, manifests: true }]]);
  });

  it('no request on an engine whose SharedSize counts no content', async () => {
    const { api, asked } = daemon({});
    await targetsOf(api, { ...engine, version: '28.5.2' }, [image('b')], [summary('b', INDEX)]);
    expect(asked).toEqual([]);
  });
});
