// The classic image store read from disk (src/engine/layerstore.ts), on a folder laid out as Docker's.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  STORE_LIMITS,
  TIME_LIMIT_WARNING,
  chainIds,
  classicStoreFor,
  readPodmanStore,
  readStoredImage,
  storeReads,
} from '../src/engine/layerstore';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

describe('the classic image store, read from disk', () => {
  const root = mkdtempSync('/tmp/sdp-layerstore-');
  const dir = join(root, 'image', 'overlay2');
  const diffIds = ['sha256:' + sha('base'), 'sha256:' + sha('app')];
  const put = (path: string, text: string) => {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  };
  const config = JSON.stringify({ rootfs: { type: 'layers', diff_ids: diffIds } });
  const imageId = 'sha256:' + sha(config);
  put(`imagedb/content/sha256/${sha(config)}`, config);
  put(`imagedb/metadata/sha256/${sha(config)}/lastUpdated`, '2025-06-01T10:00:00.123456789Z');
  const [bottom, top] = chainIds(diffIds);
  put(`layerdb/sha256/${bottom.slice(7)}/size`, '5000');
  put(`layerdb/sha256/${top.slice(7)}/size`, '1234');
  // An image whose top layer has no size file: not readable, so the API is asked.
  const broken = JSON.stringify({ rootfs: { type: 'layers', diff_ids: [diffIds[0], 'sha256:' + sha('x')] } });
  put(`imagedb/content/sha256/${sha(broken)}`, broken);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('computes chain IDs as Docker does: the bottom diff ID, then sha256("<parent> <diff ID>")', () => {
    expect(bottom).toBe(diffIds[0]);
    expect(top).toBe(`sha256:${sha(`${diffIds[0]} ${diffIds[1]}`)}`);
  });

  it("reads an image's layers, their sizes and its last tag time", async () => {
    expect(classicStoreFor(root, 'overlay2', imageId)).toBe(dir);
    const sizes = new Map<string, number | undefined>();
    expect(readStoredImage(dir, imageId, sizes, true)).toEqual({
      layers: diffIds,
      sizes: [5000, 1234],
      lastTagMs: Date.parse('2025-06-01T10:00:00.123Z'),
    });
    expect(sizes.size).toBe(2);
    // Without a budget the last tag time is not needed, and not read.
    expect(readStoredImage(dir, imageId, sizes)?.lastTagMs).toBe(0);
  });

  it('gives nothing where a part is missing, so that the API is asked instead', async () => {
    expect(readStoredImage(dir, 'sha256:' + sha(broken), new Map())).toBeUndefined();
    expect(readStoredImage(dir, 'sha256:' + sha('gone'), new Map())).toBeUndefined();
    expect(classicStoreFor(root, 'vfs', imageId)).toBeUndefined();
    expect(classicStoreFor(root, '../etc', imageId)).toBeUndefined();
    expect(classicStoreFor('', 'overlay2', imageId)).toBeUndefined();
  });
});

describe('the classic store, read within bounds', () => {
  const root = mkdtempSync('/tmp/sdp-layerstore-');
  const dir = join(root, 'image', 'overlay2');
  const put = (path: string, text: string) => {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  };
  const diffIds = ['sha256:' + sha('bounded-base')];
  const [chain] = chainIds(diffIds);
  put(`layerdb/sha256/${chain.slice(7)}/size`, '777');
  /** An image config with `padding` bytes of labels; its ID. */
  const config = (padding: number, name: string) => {
    const text = JSON.stringify({
      config: { Labels: { pad: 'x'.repeat(padding), name } },
      rootfs: { type: 'layers', diff_ids: diffIds },
    });
    put(`imagedb/content/sha256/${sha(text)}`, text);
    return { id: 'sha256:' + sha(text), text };
  };
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('a config over the 4 MiB cap is not parsed: the API is asked, with a warning naming it', () => {
    const small = config(100, 'small');
    const big = config(STORE_LIMITS.documentBytes, 'big');
    const reads = storeReads();
    expect(readStoredImage(dir, small.id, new Map(), false, reads)?.sizes).toEqual([777]);
    expect(readStoredImage(dir, big.id, new Map(), false, reads)).toBeUndefined();
    expect(reads.bytes).toBeLessThan(64 * 1024);
    expect(reads.warnings).toEqual([
      `image store: image config ${big.id} is 4 MiB (${big.text.length} bytes), over the 4 MiB cap for one read; its images are read through the API instead`,
    ]);
  });

  it('a config or size file planted as a symlink or a FIFO is not followed or waited on', () => {
    const real = config(10, 'linked');
    const elsewhere = join(root, 'elsewhere.json');
    writeFileSync(elsewhere, real.text);
    // The same document, as a symlink under another ID.
    const linkedId = 'sha256:' + sha('linked-id');
    symlinkSync(elsewhere, join(dir, 'imagedb/content/sha256', linkedId.slice(7)));
    expect(readStoredImage(dir, linkedId, new Map())).toBeUndefined();
    // A layer whose size file is a FIFO: a plain read would block the run for good.
    const fifoIds = ['sha256:' + sha('fifo-layer')];
    const fifoConfig = JSON.stringify({ rootfs: { type: 'layers', diff_ids: fifoIds } });
    put(`imagedb/content/sha256/${sha(fifoConfig)}`, fifoConfig);
    mkdirSync(join(dir, 'layerdb/sha256', fifoIds[0].slice(7)), { recursive: true });
    execFileSync('mkfifo', [join(dir, 'layerdb/sha256', fifoIds[0].slice(7), 'size')]);
    expect(readStoredImage(dir, 'sha256:' + sha(fifoConfig), new Map())).toBeUndefined();
  });

  it("no read starts after the run's time limit", () => {
    const reads = storeReads(() => 0);
    expect(readStoredImage(dir, config(1, 'late').id, new Map(), false, reads)).toBeUndefined();
    expect(reads.files).toBe(0);
    expect(reads.warnings).toEqual([TIME_LIMIT_WARNING]);
  });
});

describe("Podman's storage, read within bounds", () => {
  const root = mkdtempSync('/tmp/sdp-podman-');
  const images = join(root, 'overlay-images', 'images.json');
  const layers = join(root, 'overlay-layers', 'layers.json');
  mkdirSync(join(root, 'overlay-images'));
  mkdirSync(join(root, 'overlay-layers'));
  const write = () => {
    rmSync(images, { force: true });
    writeFileSync(images, JSON.stringify([{ id: 'a'.repeat(64), layer: 'top' }]));
  };
  writeFileSync(
    layers,
    JSON.stringify([
      { id: 'base', 'diff-digest': 'sha256:' + sha('p-base'), 'diff-size': 300 },
      { id: 'top', parent: 'base', 'diff-digest': 'sha256:' + sha('p-top'), 'diff-size': 40 },
    ]),
  );
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("reads each image's layer chain from images.json and layers.json", async () => {
    write();
    expect((await readPodmanStore(root, 'overlay'))?.get('sha256:' + 'a'.repeat(64))).toEqual({
      layers: ['sha256:' + sha('p-base'), 'sha256:' + sha('p-top')],
      sizes: [300, 40],
      lastTagMs: 0,
    });
  });

  it('images.json over 256 MiB (sparse) is not read: the API is asked, with a warning', async () => {
    write();
    truncateSync(images, STORE_LIMITS.podmanBytes + 1);
    const reads = storeReads();
    expect(await readPodmanStore(root, 'overlay', reads)).toBeUndefined();
    expect(reads.bytes).toBe(0);
    expect(reads.warnings).toEqual([
      `image store: Podman's images.json is 256 MiB (${STORE_LIMITS.podmanBytes + 1} bytes), over the 256 MiB cap for one read; its images are read through the API instead`,
    ]);
  });

  it('images.json planted as a symlink is not followed', async () => {
    const elsewhere = join(root, 'elsewhere.json');
    writeFileSync(elsewhere, JSON.stringify([{ id: 'a'.repeat(64), layer: 'top' }]));
    rmSync(images, { force: true });
    symlinkSync(elsewhere, images);
    expect(await readPodmanStore(root, 'overlay')).toBeUndefined();
  });
});
