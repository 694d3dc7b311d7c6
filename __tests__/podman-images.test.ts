// Podman's image list from containers/storage's files (src/engine/podman-images.ts), on a folder laid
// out as Podman's: the fields as Podman derives them, and every case where the reader gives up so that
// the API is asked. podman-images.itg.test.ts checks the same reader against Podman 4.3 and 5.8 themselves.
import { afterEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bigDataFileName, readPodmanImages, unixSeconds } from '../src/engine/podman-images';
import { storeReads } from '../src/engine/layerstore';
import { takeInventory } from '../src/engine/inventory';
import { hostname } from 'node:os';
import { fakeDaemon } from './support/fakeDaemon';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const hex = (c: string) => c.repeat(64);
const T = '2025-03-01T10:00:00.123456789Z';

interface Store {
  images: Record<string, unknown>[];
  layers: Record<string, unknown>[];
  /** Big-data items by image hex and key. */
  data: Record<string, Record<string, unknown>>;
}

let root: string | undefined;
afterEach(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
});

function write(store: Store): string {
  root = mkdtempSync('/tmp/sdp-podman-images-');
  mkdirSync(join(root, 'overlay-images'));
  mkdirSync(join(root, 'overlay-layers'));
  writeFileSync(join(root, 'overlay-images', 'images.json'), JSON.stringify(store.images));
  writeFileSync(join(root, 'overlay-layers', 'layers.json'), JSON.stringify(store.layers));
  for (const [id, items] of Object.entries(store.data)) {
    mkdirSync(join(root, 'overlay-images', id));
    for (const [key, doc] of Object.entries(items)) {
      writeFileSync(join(root, 'overlay-images', id, bigDataFileName(key)), JSON.stringify(doc));
    }
  }
  return root;
}

const layer = (id: string, parent?: string, size = 100) => ({
  id,
  ...(parent ? { parent } : {}),
  'diff-digest': `sha256:${sha(id)}`,
  'diff-size': size,
});

const history = (...steps: string[]) => steps.map((s) => ({ created: T, created_by: s }));

function config(layers: string[], steps: string[], labels: Record<string, string> | null = null) {
  return {
    rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${sha(l)}`) },
    history: history(...steps),
    config: { Labels: labels },
  };
}

/** An image record and its config; `extra` overrides the record's fields. */
function image(id: string, top: string | undefined, cfg: unknown, extra: Record<string, unknown> = {}) {
  const record = {
    id,
    ...(top ? { layer: top } : {}),
    names: [],
    'big-data-names': [`sha256:${id}`, 'manifest'],
    'big-data-sizes': { [`sha256:${id}`]: 700, manifest: 300 },
    created: T,
    ...extra,
  };
  return { record, data: { [`sha256:${id}`]: cfg, manifest: { schemaVersion: 2, layers: [] } } };
}

function store(images: ReturnType<typeof image>[], layers: Record<string, unknown>[]): Store {
  return {
    images: images.map((i) => ({ ...i.record })),
    layers: layers.map((l) => ({ ...l })),
    data: Object.fromEntries(images.map((i) => [i.record.id, i.data])),
  };
}

describe("Podman's image list from its files", () => {
  const layers = [layer('A'), layer('B', 'A', 50), layer('C', 'B', 7)];

  it('gives each field as the compatible list does: tags, digests per name, sizes, labels, time', async () => {
    const digest = `sha256:${sha('manifest')}`;
    const a = image(hex('a'), 'B', config(['A', 'B'], ['a', 'b'], { tier: 'web' }), {
      names: ['localhost/app:1', 'registry.example.com/team/app:1', `quay.io/x/app@${digest}`],
      digest,
    });
    const files = await readPodmanImages(write(store([a], layers)), 'overlay');
    expect(files?.summaries).toEqual([
      {
        Id: `sha256:${hex('a')}`,
        ParentId: '',
        RepoTags: ['localhost/app:1', 'registry.example.com/team/app:1', `quay.io/x/app@${digest}`],
        RepoDigests: [
          `localhost/app@${digest}`,
          `registry.example.com/team/app@${digest}`,
          `quay.io/x/app@${digest}`,
        ],
        Created: 1740823200,
        // Its layers, A and B, plus its big data.
        Size: 100 + 50 + 700 + 300,
        Labels: { tier: 'web' },
      },
    ]);
    expect(files?.stored.get(`sha256:${hex('a')}`)).toEqual({
      layers: [`sha256:${sha('A')}`, `sha256:${sha('B')}`],
      sizes: [100, 50],
      lastTagMs: 0,
    });
  });

  it('finds parents as libimage does: on the parent layer, on the same layer, and without layers', async () => {
    const base = image(hex('1'), 'A', config(['A'], ['a']));
    const child = image(hex('2'), 'B', config(['A', 'B'], ['a', 'b']));
    // Same layers as the child, one metadata step more: the child is its parent.
    const labelled = image(hex('3'), 'B', config(['A', 'B'], ['a', 'b', 'LABEL x=1']));
    // Same layers as the child, another history: no parent.
    const other = image(hex('4'), 'B', config(['A', 'B'], ['z', 'other']));
    const empty1 = image(hex('5'), undefined, config([], ['ENV a']));
    const empty2 = image(hex('6'), undefined, config([], ['ENV a', 'ENV b']));
    const files = await readPodmanImages(
      write(store([base, child, labelled, other, empty1, empty2], layers)),
      'overlay',
    );
    const parents = Object.fromEntries(files!.summaries.map((s) => [s.Id.slice(7, 8), s.ParentId]));
    // The compatible list names a parent by its bare hex.
    expect(parents).toEqual({ '1': '', '2': hex('1'), '3': hex('2'), '4': '', '5': '', '6': hex('5') });
  });

  it('compares history times as instants, to the nanosecond', async () => {
    const base = image(hex('1'), 'A', {
      ...config(['A'], []),
      history: [{ created: '2025-03-01T11:00:00.5+01:00' }],
    });
    const child = image(hex('2'), 'B', {
      ...config(['A', 'B'], []),
      history: [{ created: '2025-03-01T10:00:00.500000000Z' }, { created: T }],
    });
    const other = image(hex('3'), 'C', {
      ...config(['A', 'B', 'C'], []),
      history: [
        { created: '2025-03-01T10:00:00.500000000Z' },
        { created: '2025-03-01T10:00:00.123456788Z' },
        {},
      ],
    });
    const files = await readPodmanImages(write(store([base, child, other], layers)), 'overlay');
    expect(files!.summaries.map((s) => s.ParentId)).toEqual(['', hex('1'), '']);
  });

  it('leaves a manifest list out', async () => {
    const list = image(hex('9'), undefined, undefined);
    list.data = {
      manifest: { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] },
    } as unknown as typeof list.data;
    const a = image(hex('a'), 'A', config(['A'], ['a']));
    const files = await readPodmanImages(write(store([list, a], layers)), 'overlay');
    expect(files!.summaries.map((s) => s.Id)).toEqual([`sha256:${hex('a')}`]);
  });

  const a = () => image(hex('a'), 'B', config(['A', 'B'], ['a', 'b']), { names: ['localhost/app:1'] });
  it.each<[string, (s: Store) => void]>([
    ['its config is missing (removed meanwhile)', (s) => delete s.data[hex('a')][`sha256:${hex('a')}`]],
    ['a layer of its chain is missing', (s) => s.layers.splice(0, 1)],
    [
      'a layer has no recorded digest (Podman would walk its files)',
      (s) => delete s.layers[1]['diff-digest'],
    ],
    ['a layer has no recorded size', (s) => delete s.layers[0]['diff-size']],
    ['a big-data item has no recorded size', (s) => (s.images[0]['big-data-sizes'] = {})],
    ['its layers are ID-mapped', (s) => (s.images[0]['mapped-top-layers'] = ['X'])],
    [
      'a name its digests go with is not fully qualified',
      (s) => Object.assign(s.images[0], { names: ['app:1'], digest: `sha256:${sha('m')}` }),
    ],
    ['its time is not one', (s) => (s.images[0].created = 'yesterday')],
    ['its config is no object', (s) => (s.data[hex('a')][`sha256:${hex('a')}`] = null)],
    ['a digest is not one', (s) => (s.images[0].digest = 'md5:abc')],
    ['its ID is no digest', (s) => (s.images[0].id = '../../etc')],
    [
      'its labels are not strings',
      (s) => ((s.data[hex('a')][`sha256:${hex('a')}`] as { config: unknown }).config = { Labels: { a: 1 } }),
    ],
  ])('gives up, so the API is asked, where %s', async (_, spoil) => {
    const s = store([a()], layers);
    expect(await readPodmanImages(write(s), 'overlay')).toBeDefined();
    rmSync(root!, { recursive: true, force: true });
    spoil(s);
    expect(await readPodmanImages(write(s), 'overlay')).toBeUndefined();
  });

  it('gives up on a driver name that is no folder name, a root that is not there, and past the time limit', async () => {
    const dir = write(store([a()], layers));
    expect(await readPodmanImages(dir, '../overlay')).toBeUndefined();
    expect(await readPodmanImages(join(dir, 'none'), 'overlay')).toBeUndefined();
    // Past the run's time limit nothing more is read: the API is asked.
    expect(
      await readPodmanImages(
        dir,
        'overlay',
        storeReads(() => 0),
      ),
    ).toBeUndefined();
    expect(
      await readPodmanImages(
        dir,
        'overlay',
        storeReads(() => 1000),
      ),
    ).toBeDefined();
  });
});

describe('the helpers', () => {
  it('names big-data files as containers/storage does', () => {
    expect(bigDataFileName('manifest')).toBe('manifest');
    expect(bigDataFileName(`sha256:${hex('a')}`)).toBe(
      `=${Buffer.from(`sha256:${hex('a')}`).toString('base64')}`,
    );
    expect(bigDataFileName('Manifest')).toBe(`=${Buffer.from('Manifest').toString('base64')}`);
  });

  it("gives Go's Unix(): whole seconds, rounded down, also before 1970", () => {
    expect(unixSeconds('2025-03-01T10:00:00.999999999Z')).toBe(1740823200);
    expect(unixSeconds('2025-03-01T11:00:00+01:00')).toBe(1740823200);
    expect(unixSeconds('1969-12-31T23:59:59.5Z')).toBe(-1);
  });
});

describe("the inventory takes Podman's files only as the daemon's own", () => {
  const a = image(hex('a'), 'B', config(['A', 'B'], ['a', 'b']), { names: ['localhost/app:1'] });
  const listed = {
    Id: `sha256:${hex('a')}`,
    RepoTags: ['localhost/app:1'],
    Created: 1,
    Size: 1,
    ParentId: '',
  };
  const podman = (dir: string, info: Record<string, unknown>, host?: string) =>
    fakeDaemon({
      host,
      routes: {
        'GET /version': { ApiVersion: '1.41', Components: [{ Name: 'Podman Engine', Version: '4.3.1' }] },
        'GET /info': { Name: hostname(), DockerRootDir: dir, Driver: 'overlay', Images: 1, ...info },
        'GET /images/json': [listed],
        'GET /containers/json': [],
        'GET /networks': [],
        'GET /volumes': { Volumes: [] },
      },
    });

  it.each<[string, Record<string, unknown>, string | undefined, boolean]>([
    ['on this machine, counting as many images', {}, undefined, true],
    ['over TCP', {}, 'tcp://127.0.0.1:2375', false],
    ['of another host name', { Name: 'elsewhere' }, undefined, false],
    ['counting another number of images', { Images: 2 }, undefined, false],
  ])('%s', async (_, info, host, fromFiles) => {
    const docker = podman(write(store([a], [layer('A'), layer('B', 'A', 50)])), info, host);
    const inventory = await takeInventory(docker, 2);
    expect(docker.callsTo('GET', /^\/images\/json$/).length).toBe(fromFiles ? 0 : 1);
    expect(inventory.podmanFiles).toBe(fromFiles ? true : undefined);
    expect(inventory.images.map((i) => i.id)).toEqual([`sha256:${hex('a')}`]);
    expect(docker.callsTo('GET', /^\/system\/df$/)).toEqual([]);
  });
});
