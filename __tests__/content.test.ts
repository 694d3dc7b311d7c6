// The containerd content store read from disk (src/engine/content.ts) when its documents are crafted:
// cycles, diamonds, deep and wide indexes, blobs far over the size of a manifest. Each read must stay
// bounded (counted by StoreReads), give the exact blobs where it can, and otherwise fall back to the
// API's figure with a warning that names the limit and the digest.
import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONTENT_LIMITS, configLayers, readImageBlobs, referrers } from '../src/engine/content';
import { LIST_ATTEMPTS, listImages, takeInventory } from '../src/engine/inventory';
import {
  STORE_LIMITS,
  TIME_LIMIT_WARNING,
  storeReads,
  storeWarnings,
  warnOnce,
} from '../src/engine/layerstore';
import type { DockerApi } from '../src/engine/docker';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const HUGE = 100 * 1024 * 1024;

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
  annotations?: Record<string, string>;
}

/** A content store in a temp folder; `put` writes a blob under its digest. */
function contentStore(root = mkdtempSync('/tmp/sdp-content-')) {
  const dir = join(root, 'containerd', 'daemon', 'io.containerd.content.v1.content');
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const file = (digest: string) => join(dir, 'blobs', 'sha256', digest.slice(7));
  const put = (mediaType: string, data: string | Buffer): Desc => {
    const hex = createHash('sha256').update(data).digest('hex');
    writeFileSync(join(dir, 'blobs', 'sha256', hex), data);
    return { mediaType, digest: `sha256:${hex}`, size: Buffer.byteLength(data) };
  };
  /** A sparse file of `size` bytes (no disk) under a made-up digest. */
  const sparse = (mediaType: string, name: string, size: number, declared = size): Desc => {
    const digest = `sha256:${createHash('sha256').update(name).digest('hex')}`;
    writeFileSync(file(digest), '');
    truncateSync(file(digest), size);
    return { mediaType, digest, size: declared };
  };
  const json = (mediaType: string, doc: object) => put(mediaType, JSON.stringify({ mediaType, ...doc }));
  /** A single-platform image: manifest, config, `layers` layer blobs of distinct bytes. */
  const image = (name: string, layers = 2) => {
    const blobs = Array.from({ length: layers }, (_, i) =>
      put(OCI_LAYER, Buffer.alloc(1000 + i, `${name}${i}`)),
    );
    const diffIds = blobs.map((b) => `sha256:${createHash('sha256').update(b.digest).digest('hex')}`);
    const config = put(
      OCI_CONFIG,
      JSON.stringify({ architecture: 'amd64', rootfs: { type: 'layers', diff_ids: diffIds } }),
    );
    const manifest = json(OCI_MANIFEST, { schemaVersion: 2, config, layers: blobs });
    return { manifest, config, layers: blobs, diffIds, all: [manifest, config, ...blobs] };
  };
  return { root, dir, put, json, sparse, image, file };
}

const sizes = (descs: Desc[]) => new Map(descs.map((d) => [d.digest, d.size]));
const asMap = (blobs: { key: string; size: number }[] | undefined) =>
  blobs && new Map(blobs.map((b) => [b.key, b.size]));

describe('the content store, read within bounds', () => {
  const store = contentStore();
  afterAll(() => rmSync(store.root, { recursive: true, force: true }));

  it('a multi-arch index with attestations reads exactly as before: every present blob once, with its size', async () => {
    const amd64 = store.image('amd64');
    const attestation = store.image('attestation', 1);
    // Listed but not pulled: the other platform and its attestation take no space here.
    const missing = (name: string) => ({
      ...amd64.manifest,
      digest: `sha256:${createHash('sha256').update(name).digest('hex')}`,
    });
    const index = store.json(OCI_INDEX, {
      schemaVersion: 2,
      manifests: [
        { ...amd64.manifest, platform: { os: 'linux', architecture: 'amd64' } },
        { ...missing('arm64'), platform: { os: 'linux', architecture: 'arm64' } },
        {
          ...attestation.manifest,
          platform: { os: 'unknown', architecture: 'unknown' },
          annotations: {
            'vnd.docker.reference.type': 'attestation-manifest',
            'vnd.docker.reference.digest': amd64.manifest.digest,
          },
        },
        { ...missing('arm64-attestation'), platform: { os: 'unknown', architecture: 'unknown' } },
      ],
    });
    const expected = sizes([index, ...amd64.all, ...attestation.all]);
    const reads = storeReads();
    expect(asMap(await readImageBlobs(store.dir, index.digest, undefined, reads))).toEqual(expected);
    // The index and the two present manifests are read; configs and layers only sized.
    // From the config's digest (Docker 26's image ID), through the scan for the index above it.
    const parents = await referrers(store.dir);
    expect(asMap(await readImageBlobs(store.dir, amd64.config.digest, async () => parents))).toEqual(
      expected,
    );
    expect(await configLayers(store.dir, amd64.manifest.digest)).toEqual(amd64.diffIds);
    // The index and the two present manifests are read; configs and layers only sized.
    expect(reads.files).toBe(3);
    expect(reads.warnings).toEqual([]);
  });

  it('an index that lists itself 300 times is read once (the old walk read it 300³ times)', async () => {
    const app = store.image('self');
    // A digest cannot name its own content; the file is put under the digest it lists.
    const selfDigest = `sha256:${createHash('sha256').update('self-index').digest('hex')}`;
    const doc = JSON.stringify({
      mediaType: OCI_INDEX,
      manifests: [
        app.manifest,
        ...Array.from({ length: 300 }, () => ({ mediaType: OCI_INDEX, digest: selfDigest, size: 10 })),
      ],
    });
    writeFileSync(store.file(selfDigest), doc);
    const reads = storeReads();
    const started = Date.now();
    const blobs = asMap(await readImageBlobs(store.dir, selfDigest, undefined, reads));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(blobs).toEqual(sizes([{ ...app.manifest, digest: selfDigest, size: doc.length }, ...app.all]));
    expect(reads.files).toBe(2);
  }, 10_000);

  it('a diamond of indexes 40 wide and 3 deep is read once per document, exactly (the old walk: 64,000 reads)', async () => {
    const leaves = Array.from({ length: 40 }, (_, i) => store.image(`leaf-${i}`, 1));
    const third = Array.from({ length: 40 }, (_, i) =>
      store.json(OCI_INDEX, { n: `c${i}`, manifests: leaves.map((l) => l.manifest) }),
    );
    const second = Array.from({ length: 40 }, (_, i) =>
      store.json(OCI_INDEX, { n: `b${i}`, manifests: third }),
    );
    const top = store.json(OCI_INDEX, { manifests: second });
    const reads = storeReads();
    const blobs = asMap(await readImageBlobs(store.dir, top.digest, undefined, reads));
    expect(blobs).toEqual(sizes([top, ...second, ...third, ...leaves.flatMap((l) => l.all)]));
    expect(reads.files).toBe(1 + 40 + 40 + 40);
    expect(reads.warnings).toEqual([]);
  }, 5_000);

  it('indexes nested deeper than the limit: no figure from disk, a warning naming the digest', async () => {
    const app = store.image('deep');
    let chain: Desc = app.manifest;
    const levels: Desc[] = [];
    for (let i = 0; i < 10; i++) levels.unshift((chain = store.json(OCI_INDEX, { manifests: [chain] })));
    const reads = storeReads();
    expect(await readImageBlobs(store.dir, levels[0].digest, undefined, reads)).toBeUndefined();
    const tooDeep = levels[CONTENT_LIMITS.depth + 1].digest;
    expect(reads.warnings).toEqual([
      `image store: ${tooDeep} is nested more than ${CONTENT_LIMITS.depth} indexes deep; its images are read through the API instead`,
    ]);
    expect(reads.files).toBe(CONTENT_LIMITS.depth + 1);
  });

  it(`an index of 1,000 distinct manifests stops at ${CONTENT_LIMITS.documents} documents and falls back`, async () => {
    const manifests = Array.from({ length: 1000 }, (_, i) =>
      store.json(OCI_MANIFEST, {
        config: { mediaType: OCI_CONFIG, digest: `sha256:${'c'.repeat(64)}`, size: 2 },
        n: i,
      }),
    );
    const index = store.json(OCI_INDEX, { manifests });
    const reads = storeReads();
    expect(await readImageBlobs(store.dir, index.digest, undefined, reads)).toBeUndefined();
    expect(reads.files).toBe(CONTENT_LIMITS.documents);
    expect(reads.warnings).toEqual([
      `image store: ${index.digest} refers to more than ${CONTENT_LIMITS.documents} manifests and indexes; its images are read through the API instead`,
    ]);
  });

  it(`an index listing itself ${CONTENT_LIMITS.descriptors + 1} times stops at the descriptor limit`, async () => {
    const selfDigest = `sha256:${createHash('sha256').update('wide-self').digest('hex')}`;
    const entry = { mediaType: OCI_INDEX, digest: selfDigest, size: 1 };
    writeFileSync(
      store.file(selfDigest),
      JSON.stringify({ mediaType: OCI_INDEX, manifests: Array(CONTENT_LIMITS.descriptors + 1).fill(entry) }),
    );
    const reads = storeReads();
    expect(await readImageBlobs(store.dir, selfDigest, undefined, reads)).toBeUndefined();
    expect(reads.warnings[0]).toBe(
      `image store: ${selfDigest} lists more than ${CONTENT_LIMITS.descriptors} blobs; its images are read through the API instead`,
    );
  });

  it('a manifest that is a 100 MB file (sparse) is never read: the image falls back, with a warning', async () => {
    const app = store.image('big');
    // Its descriptor says 500 bytes: fstat says otherwise, before any byte is read.
    const big = store.sparse(OCI_MANIFEST, 'big-manifest', HUGE, 500);
    const index = store.json(OCI_INDEX, { manifests: [app.manifest, big] });
    const reads = storeReads();
    const before = process.memoryUsage().arrayBuffers;
    expect(await readImageBlobs(store.dir, index.digest, undefined, reads)).toBeUndefined();
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(HUGE / 4);
    expect(reads.bytes).toBeLessThan(64 * 1024);
    expect(reads.warnings).toEqual([
      `image store: ${big.digest} is 100 MiB (${HUGE} bytes), over the 4 MiB cap for one read; its images are read through the API instead`,
    ]);
    // Its descriptor's own size over the cap: refused before it is opened.
    const declared = store.json(OCI_INDEX, { manifests: [{ ...big, size: HUGE }] });
    const refused = storeReads();
    expect(await readImageBlobs(store.dir, declared.digest, undefined, refused)).toBeUndefined();
    expect(refused.files).toBe(1);
    // The target itself: the same.
    const target = storeReads();
    expect(await readImageBlobs(store.dir, big.digest, undefined, target)).toBeUndefined();
    expect(await configLayers(store.dir, big.digest, target)).toBeUndefined();
    expect(target.bytes).toBe(0);
    expect(target.warnings).toHaveLength(1);
  });

  it('a layer an index lists (not JSON by its media type) is sized, never read', async () => {
    const app = store.image('listed-layer');
    const layer = store.sparse(OCI_LAYER, 'listed-layer-blob', HUGE);
    const index = store.json(OCI_INDEX, { manifests: [app.manifest, layer] });
    const reads = storeReads();
    expect(asMap(await readImageBlobs(store.dir, index.digest, undefined, reads))).toEqual(
      sizes([index, ...app.all, layer]),
    );
    expect(reads.bytes).toBeLessThan(64 * 1024);
  });

  it('a FIFO planted in the store hangs no read: as a layer it is sized (0), as a manifest skipped', async () => {
    const app = store.image('fifo');
    const fifo = (mediaType: string, name: string): Desc => {
      const digest = `sha256:${createHash('sha256').update(name).digest('hex')}`;
      execFileSync('mkfifo', [store.file(digest)]);
      return { mediaType, digest, size: 10 };
    };
    const layer = fifo(OCI_LAYER, 'fifo-layer');
    const manifest = fifo(OCI_MANIFEST, 'fifo-manifest');
    const index = store.json(OCI_INDEX, { manifests: [app.manifest, layer, manifest] });
    expect(asMap(await readImageBlobs(store.dir, index.digest))).toEqual(
      sizes([index, ...app.all, { ...layer, size: 0 }]),
    );
    expect(await readImageBlobs(store.dir, manifest.digest)).toBeUndefined();
  }, 5_000);

  it('a config over the cap is not read for its layers; the inspect is asked', async () => {
    const config = store.sparse(OCI_CONFIG, 'big-config', 5 * 1024 * 1024, 300);
    const manifest = store.json(OCI_MANIFEST, { config, layers: [] });
    const reads = storeReads();
    expect(await configLayers(store.dir, manifest.digest, reads)).toBeUndefined();
    expect(reads.bytes).toBeLessThan(64 * 1024);
    expect(reads.warnings).toEqual([
      `image store: ${config.digest} is 5 MiB (${5 * 1024 * 1024} bytes), over the 4 MiB cap for one read; its images are read through the API instead`,
    ]);
  });

  it("no read starts after the run's time limit", async () => {
    const app = store.image('late');
    const reads = storeReads(() => 0);
    expect(await readImageBlobs(store.dir, app.manifest.digest, undefined, reads)).toBeUndefined();
    expect(await configLayers(store.dir, app.manifest.digest, reads)).toBeUndefined();
    await expect(referrers(store.dir, reads)).rejects.toThrow(TIME_LIMIT_WARNING);
    expect(reads.files).toBe(0);
    expect(reads.warnings).toEqual([TIME_LIMIT_WARNING]);
  });

  it('documents of any shape are no error: an image whose documents are not descriptors has only its own blob', async () => {
    const odd = [
      store.json(OCI_INDEX, { manifests: { digest: 'sha256:x' } }),
      store.json(OCI_INDEX, { manifests: [null, 7, 'sha256:x', { digest: 5 }] }),
      store.json(OCI_MANIFEST, { config: 'x', layers: { length: 1e9 } }),
      store.put(OCI_MANIFEST, '[1, 2]'),
      store.put(OCI_MANIFEST, 'null'),
    ];
    for (const doc of odd) {
      const blobs = await readImageBlobs(store.dir, doc.digest, () => referrers(store.dir));
      if (blobs) expect(blobs).toEqual([{ key: doc.digest, size: doc.size }]);
    }
    await expect(referrers(store.dir)).resolves.toBeInstanceOf(Map);
  });
});

describe('the scan for the manifests above a config', () => {
  const store = contentStore();
  afterAll(() => rmSync(store.root, { recursive: true, force: true }));

  it('reads only blobs that open a JSON object, each at most once, and none over the cap', async () => {
    const app = store.image('scan', 3);
    const index = store.json(OCI_INDEX, { manifests: [app.manifest] });
    store.sparse(OCI_LAYER, 'scan-big-layer', HUGE);
    store.sparse(OCI_MANIFEST, 'scan-big-json', 5 * 1024 * 1024);
    // A gzip layer under the cap: its first byte tells it is no document.
    const gzip = store.put(
      OCI_LAYER,
      Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.alloc(2 * 1024 * 1024, 7)]),
    );
    const reads = storeReads();
    const parents = await referrers(store.dir, reads);
    expect(parents.get(app.manifest.digest)).toEqual([index.digest]);
    expect(parents.get(app.config.digest)).toEqual([app.manifest.digest]);
    expect(reads.bytes).toBeLessThan(gzip.size / 100);
  });
});

describe('store warnings', () => {
  it(`keeps ${STORE_LIMITS.warnings} distinct warnings, then counts the rest`, () => {
    const reads = storeReads();
    for (let i = 0; i < 25; i++) warnOnce(reads, `w${i % 20}`);
    expect(storeWarnings(reads)).toEqual([
      ...Array.from({ length: STORE_LIMITS.warnings }, (_, i) => `w${i}`),
      '10 more limits hit reading the image store',
    ]);
  });
});

describe('takeInventory over a crafted content store', () => {
  const store = contentStore();
  afterAll(() => rmSync(store.root, { recursive: true, force: true }));

  /** The layers every image's inspect gives (an index's: the platform's the daemon picks). */
  const INSPECTED = [`sha256:${'e'.repeat(64)}`, `sha256:${'f'.repeat(64)}`];
  /**
   * A DockerApi answering the inventory's reads for a containerd-store daemon whose data root is `root`, of
   * `version`; each history's steps are 300 and 200 bytes. `asked` records each request with its query.
   */
  function fakeDocker(
    images: { id: string; target: string; size: number }[],
    version = '28.5.2',
    asked: string[] = [],
  ): DockerApi {
    const answers: Record<string, unknown> = {
      '/images/json': images.map((i) => ({
        Id: i.id,
        Created: 0,
        Size: i.size,
        Descriptor: { digest: i.target },
      })),
      '/info': {
        ID: 'x',
        DockerRootDir: store.root,
        Driver: 'overlayfs',
        DriverStatus: [['driver-type', 'io.containerd.snapshotter.v1']],
      },
      '/version': { Version: version, ApiVersion: '1.51' },
      '/containers/json': [],
      '/networks': [],
      '/system/df': { LayersSize: 4242, Images: [], Containers: [], Volumes: [], BuildCache: [] },
    };
    return {
      host: 'unix:///tmp/fake.sock',
      request: async <T>(_method: string, path: string, query?: Record<string, unknown>) => {
        asked.push(query?.type ? `${path} ${String(query.type)}` : path);
        if (path in answers) return answers[path] as T;
        if (/^\/images\/[^/]+\/json$/.test(path)) return { RootFS: { Layers: INSPECTED } } as T;
        if (/^\/images\/[^/]+\/history$/.test(path)) return [{ Size: 300 }, { Size: 200 }] as T;
        throw Object.assign(new Error(`unexpected ${path}`), { statusCode: 404 });
      },
      ping: async () => undefined,
      probe: async () => undefined,
      timeLeft: () => Infinity,
      close: () => undefined,
    };
  }

  it("an image whose index names a 100 MB blob is sized by the API's figure; the warning reaches the inventory", async () => {
    const good = store.image('inv-good');
    const bad = store.image('inv-bad');
    const badIndex = store.json(OCI_INDEX, {
      manifests: [bad.manifest, store.sparse(OCI_MANIFEST, 'inv-big', HUGE, 400)],
    });
    const inventory = await takeInventory(
      fakeDocker([
        { id: good.manifest.digest, target: good.manifest.digest, size: 9999 },
        { id: badIndex.digest, target: badIndex.digest, size: 7777 },
      ]),
      2,
    );
    const [first, second] = inventory.images;
    expect(asMap(first.blobs)).toEqual(sizes(good.all));
    expect(second.blobs).toBeUndefined();
    expect(second.contentSize).toBe(7777 - 300 - 200); // the list's Size less its layers (its history)
    expect(inventory.contentExact).toBe(false);
    expect(inventory.warnings).toEqual([
      expect.stringContaining(`is 100 MiB (${HUGE} bytes), over the 4 MiB cap for one read`),
    ]);
  });

  describe("Docker 29's containerd store: /system/df without its image part where the inventory has it", () => {
    const listed = (...images: Desc[]) => images.map((d) => ({ id: d.digest, target: d.digest, size: 1 }));
    const dfAsked = (asked: string[]) => asked.filter((a) => a.startsWith('/system/df'));

    it('LayersSize is each layer chain once (its history size) plus each present blob once', async () => {
      // Two images over one shared first layer: three chains (200 shared, 300 each of their own; the
      // history lists the newest step first).
      const shared = store.put(OCI_LAYER, 'shared layer');
      const diffIds = (own: string) => [`sha256:${'1'.repeat(64)}`, `sha256:${own.repeat(64)}`];
      const config = (own: string) =>
        store.put(OCI_CONFIG, JSON.stringify({ rootfs: { type: 'layers', diff_ids: diffIds(own) } }));
      const image = (own: string) => {
        const c = config(own);
        const layer = store.put(OCI_LAYER, `layer ${own}`);
        return {
          c,
          layer,
          manifest: store.json(OCI_MANIFEST, { schemaVersion: 2, config: c, layers: [shared, layer] }),
        };
      };
      const a = image('a');
      const b = image('b');
      const asked: string[] = [];
      const inventory = await takeInventory(fakeDocker(listed(a.manifest, b.manifest), '29.7.2', asked), 2);
      const blobs = [shared, a.c, a.layer, a.manifest, b.c, b.layer, b.manifest];
      expect(inventory.usage.layers).toBe(200 + 300 + 300 + blobs.reduce((n, d) => n + d.size, 0));
      expect(dfAsked(asked)).toEqual(['/system/df container,volume,build-cache']);
    });

    it('asks for the image part after all when an image has two platforms here (its history sizes one)', async () => {
      const amd64 = store.image('two-amd64');
      const arm64 = store.image('two-arm64');
      const plat = (d: Desc, architecture: string) => ({ ...d, platform: { os: 'linux', architecture } });
      const index = store.json(OCI_INDEX, {
        schemaVersion: 2,
        manifests: [plat(amd64.manifest, 'amd64'), plat(arm64.manifest, 'arm64')],
      });
      const asked: string[] = [];
      const inventory = await takeInventory(fakeDocker(listed(index), '29.7.2', asked), 2);
      expect(inventory.usage.layers).toBe(4242);
      expect(dfAsked(asked)).toEqual(['/system/df container,volume,build-cache', '/system/df image']);
      expect(inventory.phases?.dfImagesMs).toBeGreaterThanOrEqual(0);
    });

    it('an attestation is no platform; before Docker 29, and where the store is not readable, df is asked whole', async () => {
      const amd64 = store.image('att-amd64');
      const attestation = store.put(
        OCI_MANIFEST,
        JSON.stringify({
          schemaVersion: 2,
          config: amd64.config,
          layers: [{ ...store.put('application/vnd.in-toto+json', '{}') }],
        }),
      );
      const index = store.json(OCI_INDEX, {
        schemaVersion: 2,
        manifests: [
          { ...amd64.manifest, platform: { os: 'linux', architecture: 'amd64' } },
          { ...attestation, platform: { os: 'unknown', architecture: 'unknown' } },
        ],
      });
      const asked: string[] = [];
      await takeInventory(fakeDocker(listed(index), '29.7.2', asked), 2);
      expect(dfAsked(asked)).toEqual(['/system/df container,volume,build-cache']);
      const before: string[] = [];
      expect((await takeInventory(fakeDocker(listed(index), '28.5.2', before), 2)).usage.layers).toBe(4242);
      expect(dfAsked(before)).toEqual(['/system/df']);
    });
  });
});

describe('listImages on a shared host', () => {
  /** A DockerApi whose image list fails with `errors` in turn, then answers. */
  function flaky(errors: { statusCode: number; message: string }[]) {
    let calls = 0;
    const docker = {
      request: async <T>() => {
        const error = errors[calls++];
        if (error) throw Object.assign(new Error(error.message), error);
        return [{ Id: 'sha256:aa' }] as T;
      },
    } as unknown as DockerApi;
    return { docker, calls: () => calls };
  }
  const racing = {
    statusCode: 500,
    message:
      'retrieving parent of image "e6b9": you may need to remove the image to resolve the error: image not known',
  };

  it('asks again when Podman 4.3 fails the list because someone removed an image while it listed', async () => {
    const { docker, calls } = flaky([racing, { statusCode: 500, message: 'layer not known' }]);
    expect(await listImages(docker)).toEqual([{ Id: 'sha256:aa' }]);
    expect(calls()).toBe(3);
  });

  it(`gives up after ${LIST_ATTEMPTS} lists, and never asks again after any other error`, async () => {
    const always = flaky(Array(LIST_ATTEMPTS).fill(racing));
    await expect(listImages(always.docker)).rejects.toThrow('image not known');
    expect(always.calls()).toBe(LIST_ATTEMPTS);
    const other = flaky([{ statusCode: 500, message: 'database is locked' }]);
    await expect(listImages(other.docker)).rejects.toThrow('database is locked');
    expect(other.calls()).toBe(1);
    const missing = flaky([{ statusCode: 404, message: 'image not known' }]);
    await expect(listImages(missing.docker)).rejects.toThrow();
    expect(missing.calls()).toBe(1);
  });
});
