// The containerd store's content counted from the API (what a docker-group user, who cannot read the
// content store, gets): on a real daemon, each image's own and shared content as withUniqueContent splits
// it against what the content store holds, read as root. The sample fleet (single manifests) and two
// images loaded as OCI indexes (a second platform listed, not present, as a pull leaves it).
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { connectDocker, type DockerApi } from '../src/engine/docker';
import {
  apiTimeMs,
  measureUsage,
  takeInventory,
  targetsOf,
  withUniqueContent,
  type ApiDiskUsage,
} from '../src/engine/inventory';
import {
  layerSizesFromHistory,
  sharedSizeCountsContent,
  snapshotsInLayersSize,
} from '../src/policy/estimate';
import type { ImageInfo } from '../src/types';
import { currentEngine, describeDocker, ENGINES, startDaemon, type PrivateDaemon } from './support/daemon';
import { loadFleet, sampleFleet } from './support/fleet';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** One regular file of a tar (ustar header, data padded to 512 bytes). */
function tarEntry(name: string, data: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const octal = (n: number, width: number) => n.toString(8).padStart(width - 1, '0') + '\0';
  header.write(name, 0);
  header.write(octal(0o644, 8), 100);
  header.write(octal(0, 8), 108);
  header.write(octal(0, 8), 116);
  header.write(octal(data.length, 12), 124);
  header.write(octal(1_700_000_000, 12), 136);
  header.write(' '.repeat(8), 148);
  header.write('0', 156);
  header.write('ustar\0' + '00', 257);
  const sum = header.reduce((n, b) => n + b, 0);
  header.write(octal(sum, 7) + ' ', 148);
  return Buffer.concat([header, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}
const tar = (files: [string, Buffer][]) =>
  Buffer.concat([...files.map(([n, d]) => tarEntry(n, d)), Buffer.alloc(1024)]);

/** An OCI archive of images `names`, each an index of an amd64 manifest (present) and an arm64 one (not). */
function ociIndexes(names: string[]): Buffer {
  const blobs = new Map<string, Buffer>();
  const put = (mediaType: string, data: Buffer) => {
    blobs.set(sha256(data), data);
    return { mediaType, digest: `sha256:${sha256(data)}`, size: data.length };
  };
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  const shared = tar([['shared.bin', randomBytes(50_000)]]);
  const refs = names.map((name) => {
    const layers = [shared, tar([[`${name}.bin`, randomBytes(20_000)]])];
    const config = json({
      architecture: 'amd64',
      os: 'linux',
      created: '2024-01-01T00:00:00Z',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${sha256(l)}`) },
      history: layers.map(() => ({ created: '2024-01-01T00:00:00Z' })),
    });
    const manifest = json({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: put('application/vnd.oci.image.config.v1+json', config),
      layers: layers.map((l) => put('application/vnd.oci.image.layer.v1.tar', l)),
    });
    const absent = json({ absent: name });
    const index = json({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          ...put('application/vnd.oci.image.manifest.v1+json', manifest),
          platform: { architecture: 'amd64', os: 'linux' },
        },
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${sha256(absent)}`,
          size: absent.length,
          platform: { architecture: 'arm64', os: 'linux' },
        },
      ],
    });
    return {
      ...put('application/vnd.oci.image.index.v1+json', index),
      annotations: {
        'io.containerd.image.name': `docker.io/library/${name}:1`,
        'org.opencontainers.image.ref.name': '1',
      },
    };
  });
  return tar([
    ['oci-layout', json({ imageLayoutVersion: '1.0.0' })],
    [
      'index.json',
      json({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: refs }),
    ],
    ...[...blobs].map(([hex, data]): [string, Buffer] => [`blobs/sha256/${hex}`, data]),
  ]);
}

/** Each image's content only it references, and the rest of its content, from the blobs read as root. */
function truthOf(images: ImageInfo[]): Map<string, { own: number; shared: number }> {
  const holders = new Map<string, number>();
  for (const image of images)
    for (const b of image.blobs ?? []) holders.set(b.key, (holders.get(b.key) ?? 0) + 1);
  return new Map(
    images.map((image) => {
      const sum = (own: boolean) =>
        (image.blobs ?? []).reduce((n, b) => n + ((holders.get(b.key) === 1) === own ? b.size : 0), 0);
      return [image.id, { own: sum(true), shared: sum(false) }];
    }),
  );
}

let daemon: PrivateDaemon;
let api: DockerApi;

/** `api`, telling `seen` of each request before it is made. */
const recording = (seen: (path: string, query?: Record<string, unknown>) => void): DockerApi => ({
  ...api,
  request: (method, path, query) => {
    seen(path, query);
    return api.request(method, path, query);
  },
});

describeDocker("the containerd store's content counted from the API", () => {
  if (ENGINES[currentEngine()].imageStore !== 'containerd') {
    it.skip(`[skipped on ${currentEngine()}: needs the containerd image store]`, () => undefined);
    return;
  }
  beforeAll(async () => {
    daemon = (await startDaemon('contentapi'))!;
    api = connectDocker(daemon.host, { timeoutMs: 60_000 });
    await loadFleet(daemon.docker, sampleFleet());
    const stream = await daemon.docker.loadImage(Readable.from([ociIndexes(['idx-a', 'idx-b'])]));
    for await (const chunk of stream as AsyncIterable<Buffer>) void chunk;
  }, 180_000);
  afterAll(async () => {
    api?.close();
    await daemon?.stop();
  }, 60_000);

  it("the image bytes are the daemon's own: on Docker 29 computed from the layers and blobs read, /system/df asked without its image part", async () => {
    const asked: string[] = [];
    const inventory = await takeInventory(
      recording((path, query) => {
        if (path === '/system/df') asked.push(String(query?.type ?? 'all'));
      }),
      4,
    );
    // Nothing changes between the two: the daemon's whole /system/df, as a prune's measure asks it.
    const measured = await measureUsage(api, inventory);
    expect(inventory.usage.layers).toBeGreaterThan(0);
    expect(inventory.usage.layers).toBe(measured.layers);
    // The fleet's images are single manifests and indexes of one present platform: none needs the part.
    const computed = !snapshotsInLayersSize(inventory.engine);
    expect(asked).toEqual([computed ? 'container,volume,build-cache' : 'all']);
  }, 120_000);

  it("each layer's size read from containerd's snapshot database is what its history says, and no history is asked", async () => {
    const histories: string[] = [];
    const inventory = await takeInventory(
      recording((path) => {
        if (path.endsWith('/history')) histories.push(path);
      }),
      4,
    );
    expect(histories).toEqual([]);
    expect(inventory.images.length).toBeGreaterThan(5);
    for (const image of inventory.images) {
      const steps = await api.request<{ Size: number }[]>('GET', `/images/${image.id}/history`);
      const fromHistory = layerSizesFromHistory(
        image.layers,
        steps.map((s) => s.Size),
      );
      expect({ id: image.id, sizes: image.layerSizes, exact: image.layerSizesExact }).toEqual({
        id: image.id,
        sizes: fromHistory.sizes,
        exact: true,
      });
    }
  }, 120_000);

  it("each image's last tag time read from containerd's metadata is its inspect's; only indexes are inspected", async () => {
    const inspects: string[] = [];
    const inventory = await takeInventory(
      recording((path) => {
        if (/^\/images\/[^/]+\/json$/.test(path)) inspects.push(path);
      }),
      4,
      { tagTimes: true },
    );
    // Only where the list names no single manifest (Docker 26.1's API 1.45 names none; an index's platform
    // is the daemon's choice) does the inspect give the layers.
    const listed = await api.request<{ Id: string; Descriptor?: { digest?: string; mediaType?: string } }[]>(
      'GET',
      '/images/json',
      { all: true },
    );
    const needInspect = listed
      .filter((s) => !s.Descriptor?.digest || /index|manifest\.list/.test(s.Descriptor.mediaType ?? ''))
      .map((s) => `/images/${s.Id}/json`);
    expect(inspects.sort()).toEqual(needInspect.sort());
    if (listed.some((s) => s.Descriptor?.digest)) expect(needInspect.length).toBeLessThan(listed.length);
    for (const image of inventory.images) {
      const inspect = await api.request<{ Metadata?: { LastTagTime?: string } }>(
        'GET',
        `/images/${image.id}/json`,
      );
      expect({ id: image.id, lastTagMs: image.lastTagMs }).toEqual({
        id: image.id,
        lastTagMs: apiTimeMs(inspect.Metadata?.LastTagTime),
      });
    }
  }, 120_000);

  it('splits every image’s content as the content store holds it (Docker 29.5+); earlier, not at all', async () => {
    // Root reads the content store: the truth. The API path is what a user who cannot read it takes.
    const inventory = await takeInventory(api, 4);
    expect(inventory.contentExact).toBe(true);
    const asUser = inventory.images.map(({ blobs: _read, ...image }) => ({
      ...image,
      contentSize: image.size - image.layerSizes.reduce((n, s) => n + s, 0),
    }));
    const listed = new Map(
      (await api.request<{ Id: string }[]>('GET', '/images/json', { all: true })).map((s) => [s.Id, s]),
    );
    const summaries = asUser.map((image) => listed.get(image.id) as Parameters<typeof targetsOf>[3][number]);
    const targets = await targetsOf(api, inventory.engine, asUser, summaries);
    const df = await api.request<ApiDiskUsage>('GET', '/system/df');
    const split = withUniqueContent(asUser, inventory.engine, df, targets);
    expect(split.filter((i) => i.repoTags.some((t) => t.startsWith('idx-'))).length).toBe(2);
    if (!sharedSizeCountsContent(inventory.engine)) {
      expect(split).toEqual(asUser);
      return;
    }
    const truth = truthOf(inventory.images);
    const counted = new Map(split.map((i) => [i.id, { own: i.blobs?.[0]?.size, shared: i.contentSize }]));
    expect(counted).toEqual(truth);
    expect(split.every((i) => i.contentSharedOnly === true)).toBe(true);
  }, 120_000);
});
