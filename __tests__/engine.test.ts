// Per-engine facts as pure code: which engine answers, /system/df across API versions, the estimate's
// method and bounds per image store, and content-store blobs counted once.
import { afterAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import { configLayers, readImageBlobs, referrers, rootsOf } from '../src/engine/content';
import { bytesFreed, blobBytesFreed, estimateMethod, layerBytesFreed } from '../src/policy/estimate';
import { connectDocker, describeError } from '../src/engine/docker';
import { deleteConnections } from '../src/run';
import { diskUsage, engineOf, imageGraphBytes, storeUsage, usageOf } from '../src/engine/inventory';
import { snapshotsInLayersSize } from '../src/policy/estimate';
import type { ImageInfo } from '../src/types';
import { imageInfo, withLayers } from './support/objects';

function image(id: string, layers: [string, number][], extra: Partial<ImageInfo> = {}): ImageInfo {
  return imageInfo({ id, ...withLayers(layers), ...extra });
}

describe('engineOf', () => {
  it('tells Docker from Podman and the image store from /info', () => {
    expect(
      engineOf(
        { Version: '28.5.2', ApiVersion: '1.51', Components: [{ Name: 'Engine', Version: '28.5.2' }] },
        { ID: 'x', DriverStatus: [['driver-type', 'io.containerd.snapshotter.v1']] },
      ),
    ).toEqual({ name: 'docker', version: '28.5.2', apiVersion: '1.51', imageStore: 'containerd', id: 'x' });
    expect(
      engineOf(
        { Version: '20.10.24', ApiVersion: '1.41' },
        { ID: 'y', DriverStatus: [['Backing Filesystem', 'extfs']] },
      ),
    ).toMatchObject({ name: 'docker', imageStore: 'classic' });
    expect(
      engineOf(
        {
          Version: '4.3.1',
          ApiVersion: '1.41',
          Components: [{ Name: 'Podman Engine', Version: '4.3.1' }],
        },
        { ID: 'z', DriverStatus: [['Backing Filesystem', 'extfs']] },
      ),
    ).toEqual({ name: 'podman', version: '4.3.1', apiVersion: '1.41', imageStore: 'podman', id: '' }); // random per call
  });
});

describe('usageOf', () => {
  it('reads the per-object lists, and API 1.52 per-type totals only when the lists are absent', () => {
    expect(
      usageOf({
        LayersSize: 100,
        Containers: [{ SizeRw: 5 } as never],
        Volumes: [{ UsageData: { Size: 7, RefCount: 0 } } as never],
        BuildCache: [{ Size: 9, Shared: false } as never, { Size: 4, Shared: true } as never],
        ImageUsage: { TotalSize: 999 },
      }),
    ).toEqual({ layers: 100, containers: 5, volumes: 7, buildCache: 9 });
    expect(
      usageOf({
        ImageUsage: { TotalSize: 300 },
        ContainerUsage: { TotalSize: 30 },
        VolumeUsage: { TotalSize: 3 },
        BuildCacheUsage: { TotalSize: -1 },
      }),
    ).toEqual({ layers: 300, containers: 30, volumes: 3, buildCache: 0 });
  });
});

describe('snapshotsInLayersSize and storeUsage', () => {
  const docker = (version: string, imageStore: 'classic' | 'containerd') => ({
    name: 'docker' as const,
    version,
    imageStore,
  });
  it('on the containerd store before Docker 29 only: 29.7 counts containers and build cache on their own', () => {
    expect(snapshotsInLayersSize(docker('26.1.5+dfsg1', 'containerd'))).toBe(true);
    expect(snapshotsInLayersSize(docker('28.5.2', 'containerd'))).toBe(true);
    expect(snapshotsInLayersSize(docker('29.7.2', 'containerd'))).toBe(false);
    expect(snapshotsInLayersSize(docker('30.0.0', 'containerd'))).toBe(false);
    expect(snapshotsInLayersSize(docker('28.5.2', 'classic'))).toBe(false);
    expect(snapshotsInLayersSize({ name: 'podman', version: '5.8.6', imageStore: 'podman' })).toBe(false);
  });
  it("keeps the containers' and build cache's own figures where LayersSize leaves them out", async () => {
    // Measured on a container writing 300 KB: 28.5's LayersSize grew by it, 29.7.2's did not.
    const usage = { layers: 3_976_004, containers: 311_296, volumes: 7, buildCache: 135_168 };
    expect(await storeUsage(docker('28.5.2', 'containerd'), usage, [])).toEqual({
      ...usage,
      containers: 0,
      buildCache: 0,
    });
    expect(await storeUsage(docker('29.7.2', 'containerd'), usage, [])).toEqual(usage);
    expect(await storeUsage(docker('29.7.2', 'classic'), usage, [])).toEqual(usage);
  });
});

describe('content-store blobs and Podman metadata', () => {
  const base: [string, number] = ['sha256:base', 1000];
  const a = image('a', [base, ['sha256:a', 100]], {
    blobs: [
      { key: 'sha256:ma', size: 5 },
      { key: 'sha256:blob-base', size: 900 },
      { key: 'sha256:blob-a', size: 90 },
    ],
  });
  const b = image('b', [base, ['sha256:b', 200]], {
    blobs: [
      { key: 'sha256:mb', size: 6 },
      { key: 'sha256:blob-base', size: 900 },
      { key: 'sha256:blob-b', size: 180 },
    ],
  });

  it('counts a blob once, and only when no remaining image references it', () => {
    expect(blobBytesFreed([a], [b])).toBe(5 + 90);
    expect(blobBytesFreed([a, b], [])).toBe(5 + 6 + 900 + 90 + 180);
    expect(bytesFreed([a], [b])).toBe(100 + 5 + 90);
    expect(bytesFreed([a, b], [])).toBe(1300 + 1181);
  });

  it('says which method was used: exact with a readable content store, bounded without', () => {
    expect(estimateMethod('containerd', [a], [b], true)).toMatchObject({
      method: 'layer-graph+content',
      exact: true,
    });
    const unreadable = { ...a, blobs: undefined, contentSize: 995 };
    const bounded = estimateMethod('containerd', [unreadable], [b], true);
    expect(bounded).toMatchObject({ method: 'layer-graph+content-bounded', exact: false });
    expect(bounded.low).toBe(layerBytesFreed([unreadable], [b]));
    expect(bounded.high).toBe(100 + 995);
    expect(estimateMethod('classic', [a], [b], false)).toMatchObject({ method: 'layer-graph', exact: false });
    expect(estimateMethod('podman', [a], [b], true).method).toBe('layer-graph+metadata');
  });

  it('Podman: the layer total counts each chain once plus every image’s metadata', () => {
    const p1 = image('p1', [base, ['sha256:a', 100]], { blobs: [{ key: 'metadata:p1', size: 7 }] });
    const p2 = image('p2', [base], { blobs: [{ key: 'metadata:p2', size: 3 }] });
    expect(imageGraphBytes([p1, p2])).toBe(1000 + 100 + 7 + 3);
  });
});

describe('the containerd content store, read from disk', () => {
  // A store with an index → manifest → config + 2 layers, and a second manifest sharing one layer.
  const dir = mkdtempSync('/tmp/sdp-content-');
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = (data: string | Buffer) => {
    const hex = createHash('sha256').update(data).digest('hex');
    writeFileSync(join(dir, 'blobs', 'sha256', hex), data);
    return { digest: `sha256:${hex}`, size: Buffer.byteLength(data) };
  };
  const layerA = put(Buffer.alloc(3000, 1));
  const layerB = put(Buffer.alloc(5000, 2));
  const diffIds = ['sha256:' + 'a'.repeat(64), 'sha256:' + 'b'.repeat(64)];
  const config = put(JSON.stringify({ rootfs: { type: 'layers', diff_ids: diffIds } }));
  const manifest = put(
    JSON.stringify({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config,
      layers: [layerA, layerB],
    }),
  );
  const index = put(
    JSON.stringify({ mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [manifest] }),
  );
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads an image from its index: every blob once, with its size', async () => {
    const blobs = await readImageBlobs(dir, index.digest);
    expect(new Map(blobs!.map((b) => [b.key, b.size]))).toEqual(
      new Map([index, manifest, config, layerA, layerB].map((d) => [d.digest, d.size])),
    );
  });

  it('finds the index above a config digest (an image ID that is its config’s)', async () => {
    const parents = await referrers(dir);
    expect(rootsOf(config.digest, parents)).toEqual([index.digest]);
    const blobs = await readImageBlobs(dir, config.digest, async () => parents);
    expect(blobs!.map((b) => b.key).sort()).toEqual(
      [index, manifest, config, layerA, layerB].map((d) => d.digest).sort(),
    );
    // Without the scan a config digest cannot be placed: no figure rather than a wrong one.
    expect(await readImageBlobs(dir, config.digest)).toBeUndefined();
    expect(await readImageBlobs(dir, 'sha256:' + '0'.repeat(64))).toBeUndefined();
  });

  it("reads a manifest's layers (diff IDs) from its config, and leaves an index to the daemon", async () => {
    expect(await configLayers(dir, manifest.digest)).toEqual(diffIds);
    // An index: which platform's manifest the daemon would pick is its own choice.
    expect(await configLayers(dir, index.digest)).toBeUndefined();
    expect(await configLayers(dir, config.digest)).toBeUndefined();
    expect(await configLayers(dir, 'sha256:' + '0'.repeat(64))).toBeUndefined();
  });
});

describe('diskUsage (/system/df) over a daemon that fails in passing', () => {
  /** A local HTTP server on a unix socket answering /system/df with `answers` in turn (then the last). */
  async function dfServer(answers: [number, string][]) {
    const dir = mkdtempSync('/tmp/sdp-unit-');
    const socket = join(dir, 'docker.sock');
    const asked: string[] = [];
    const server = http.createServer((req, res) => {
      asked.push(`${req.method} ${req.url}`);
      const [status, message] = answers[Math.min(asked.length - 1, answers.length - 1)];
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(status === 200 ? message : JSON.stringify({ message }));
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    const docker = connectDocker(`unix://${socket}`, { timeoutMs: 5000 });
    return {
      docker,
      asked,
      async close() {
        docker.close();
        await new Promise((resolve) => server.close(resolve));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const DF = JSON.stringify({ LayersSize: 42, Images: [], Containers: [], Volumes: [], BuildCache: [] });
  const VANISHED: [number, string] = [404, 'NotFound: snapshot abc-view does not exist: not found'];
  const BUSY: [number, string] = [500, 'a disk usage operation is already running'];
  const FAST = { busy: 5, busyMs: 1, vanished: 4, vanishedMs: 1 };

  it('asks again while a snapshot vanished mid-walk (BuildKit after a build) or another df runs', async () => {
    const daemon = await dfServer([VANISHED, BUSY, VANISHED, [200, DF]]);
    try {
      expect((await diskUsage(daemon.docker, FAST)).LayersSize).toBe(42);
      expect(daemon.asked).toEqual(Array(4).fill('GET /system/df'));
    } finally {
      await daemon.close();
    }
  });

  it('asks again when another client removed an image or layer while it listed them (20.10, Podman)', async () => {
    const daemon = await dfServer([
      [500, 'failed to retrieve image list: layer sha256:59ee615bc75d was not found (corruption?)'],
      [500, 'retrieving parent of image 1234: image not known'],
      [200, DF],
    ]);
    try {
      expect((await diskUsage(daemon.docker, FAST)).LayersSize).toBe(42);
      expect(daemon.asked).toHaveLength(3);
    } finally {
      await daemon.close();
    }
  });

  it('gives up after its limit, with an error naming the request and the daemon’s words', async () => {
    const daemon = await dfServer([VANISHED]);
    try {
      const error = await diskUsage(daemon.docker, FAST).catch((e: unknown) => e);
      expect(daemon.asked).toHaveLength(FAST.vanished);
      expect(describeError(error)).toBe(
        'GET /system/df: NotFound: snapshot abc-view does not exist: not found',
      );
    } finally {
      await daemon.close();
    }
  });

  it('does not ask again on an error that will not pass', async () => {
    const daemon = await dfServer([
      [500, 'driver failed'],
      [200, DF],
    ]);
    try {
      const error = await diskUsage(daemon.docker, FAST).catch((e: unknown) => e);
      expect(describeError(error)).toBe('GET /system/df: driver failed');
      expect(daemon.asked).toHaveLength(1);
    } finally {
      await daemon.close();
    }
  });
});

describe('deleteConnections', () => {
  it('is chosen per image store, as measured, unless the benchmark sets SDP_DELETE_CONNECTIONS', () => {
    expect(deleteConnections('classic', undefined)).toBe(8);
    expect(deleteConnections('containerd', undefined)).toBe(16);
    expect(deleteConnections('podman', undefined)).toBe(8);
    expect(deleteConnections('classic', '32')).toBe(32);
    // Anything but a whole number from 1 to 64 leaves the store's own.
    for (const bad of ['', '0', '65', '2.5', 'many']) expect(deleteConnections('containerd', bad)).toBe(16);
  });
});
