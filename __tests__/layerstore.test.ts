// The classic image store read from disk (src/engine/layerstore.ts), on a folder laid out as Docker's.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chainIds, classicStoreFor, readStoredImage } from '../src/engine/layerstore';

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
