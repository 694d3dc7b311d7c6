import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { diskFree } from '../src/engine/disk';
import { isContainerdStore } from '../src/engine/inventory';

describe('diskFree: a number only when the daemon’s disk is this machine’s', () => {
  const root = mkdtempSync(join(tmpdir(), 'sdp-root-'));
  mkdirSync(join(root, 'image'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('measures the data root of a local daemon', async () => {
    expect(await diskFree('unix:///var/run/docker.sock', root)).toBeGreaterThan(0);
  });

  it('knows the containerd image store’s data root too', async () => {
    const c8d = mkdtempSync(join(tmpdir(), 'sdp-c8d-'));
    mkdirSync(join(c8d, 'containerd'));
    try {
      expect(await diskFree('unix:///var/run/docker.sock', c8d)).toBeGreaterThan(0);
    } finally {
      rmSync(c8d, { recursive: true, force: true });
    }
  });

  it.each([
    ['a remote daemon', 'tcp://10.0.0.5:2376', root],
    ['an ssh daemon', 'ssh://ci@build-host', root],
    ['a data root this machine cannot see', 'unix:///var/run/docker.sock', join(root, 'missing')],
    ['a directory that is not a Docker data root', 'unix:///var/run/docker.sock', tmpdir()],
  ])('is unknown for %s', async (_name, host, dir) => {
    expect(await diskFree(host, dir)).toBeUndefined();
  });
});

describe('isContainerdStore', () => {
  it.each([
    [[['driver-type', 'io.containerd.snapshotter.v1']], true],
    [
      [
        ['Backing Filesystem', 'extfs'],
        ['Supports d_type', 'true'],
      ],
      false,
    ],
    [null, false],
  ] as [[string, string][] | null, boolean][])('%j → %s', (status, expected) => {
    expect(isContainerdStore(status)).toBe(expected);
  });
});
