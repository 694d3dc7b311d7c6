// When the containers' sizes are read from Podman's files and when the API is asked instead
// (src/engine/podman-containers.ts), on a store laid out in a temporary folder as containers/storage lays
// it out. Whether the walk counts as Podman does is checked against real Podman in podman-containers.itg.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  readContainerSizes,
  sizedByDiff,
  sizesReadable,
  type PodmanService,
} from '../src/engine/podman-containers';
import { storeReads } from '../src/engine/layerstore';

const hex = (c: string) => c.repeat(64);
const [CONTAINER, LAYER, PARENT] = [hex('c'), hex('1'), hex('2')];
let root: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'sdp-pc-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** A container on a layer over PARENT, its upper folder holding `files` (name to text). */
function store(files: Record<string, string> = {}, opts: { lowerLink?: string } = {}): void {
  mkdirSync(join(root, 'overlay-containers'), { recursive: true });
  mkdirSync(join(root, 'overlay-layers'), { recursive: true });
  writeFileSync(
    join(root, 'overlay-containers/containers.json'),
    JSON.stringify([{ id: CONTAINER, layer: LAYER, image: hex('9') }]),
  );
  writeFileSync(
    join(root, 'overlay-layers/layers.json'),
    JSON.stringify([{ id: PARENT }, { id: LAYER, parent: PARENT }]),
  );
  mkdirSync(join(root, 'overlay', PARENT, 'diff'), { recursive: true });
  mkdirSync(join(root, 'overlay', LAYER, 'diff'), { recursive: true });
  mkdirSync(join(root, 'overlay/l'), { recursive: true });
  symlinkSync(opts.lowerLink ?? `../${PARENT}/diff`, join(root, 'overlay/l/PARENTLINK'));
  writeFileSync(join(root, 'overlay', LAYER, 'lower'), 'l/PARENTLINK');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(root, 'overlay', LAYER, 'diff', name, '..'), { recursive: true });
    writeFileSync(join(root, 'overlay', LAYER, 'diff', name), text);
  }
}

const service = (over: Partial<PodmanService> = {}): PodmanService => ({
  version: '4.3.1',
  rootDir: '/var/lib/containers/storage',
  driver: 'overlay',
  driverStatus: [
    ['Backing Filesystem', 'extfs'],
    ['Native Overlay Diff', 'true'],
  ],
  ...over,
});

describe('sizesReadable', () => {
  it('holds for Podman before 4.6 on overlay with the native diff only', () => {
    expect(sizesReadable(service())).toBe(true);
    expect(sizesReadable(service({ version: '4.5.1' }))).toBe(true);
    // 4.6 and later size a container with containers/storage's ContainerSize.
    expect(sizesReadable(service({ version: '4.6.0' }))).toBe(false);
    expect(sizesReadable(service({ version: '5.8.6' }))).toBe(false);
    expect(sizesReadable(service({ version: 'unknown' }))).toBe(false);
    // The naive diff (a mount program such as fuse-overlayfs, or a kernel without it) sizes otherwise.
    expect(sizesReadable(service({ driverStatus: [['Native Overlay Diff', 'false']] }))).toBe(false);
    expect(sizesReadable(service({ driverStatus: null }))).toBe(false);
    expect(sizesReadable(service({ driver: 'vfs' }))).toBe(false);
    expect(sizesReadable(service({ rootDir: '' }))).toBe(false);
  });
});

describe('sizedByDiff', () => {
  it('holds before Podman 4.6', () => {
    expect(['3.4.4', '4.3.1', '4.5.0'].map(sizedByDiff)).toEqual([true, true, true]);
    expect(['4.6.0', '4.10.1', '5.8.6', '', 'dev'].map(sizedByDiff)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
  });
});

describe('readContainerSizes', () => {
  it("sums the upper folder's files", async () => {
    store({ 'a/b/file': 'x'.repeat(300), top: 'hello' });
    const reads = storeReads();
    expect(await readContainerSizes(root, 'overlay', [CONTAINER], reads)).toEqual(
      new Map([[CONTAINER, 305]]),
    );
    expect(reads.files).toBe(2);
  });

  it('gives up where Podman would diff the naive way: a first lower folder that is not the parent', async () => {
    store({ top: 'hello' }, { lowerLink: `../${hex('3')}/diff` });
    expect(await readContainerSizes(root, 'overlay', [CONTAINER])).toBeUndefined();
  });

  it('sizes a layer without a parent only where it has no lower folders, as the driver does', async () => {
    store({ top: 'hello' });
    writeFileSync(join(root, 'overlay-layers/layers.json'), JSON.stringify([{ id: LAYER }]));
    expect(await readContainerSizes(root, 'overlay', [CONTAINER])).toBeUndefined();
    rmSync(join(root, 'overlay', LAYER, 'lower'));
    expect(await readContainerSizes(root, 'overlay', [CONTAINER])).toEqual(new Map([[CONTAINER, 5]]));
    // A lower file that is a link is not followed.
    symlinkSync(join(root, 'elsewhere'), join(root, 'overlay', LAYER, 'lower'));
    expect(await readContainerSizes(root, 'overlay', [CONTAINER])).toBeUndefined();
  });

  it('gives up on a container it has no record of (one made from a root file system), or a bad ID', async () => {
    store();
    expect(await readContainerSizes(root, 'overlay', [hex('d')])).toBeUndefined();
    expect(await readContainerSizes(root, 'overlay', ['../../etc'])).toBeUndefined();
    expect(await readContainerSizes(root, '../overlay', [CONTAINER])).toBeUndefined();
  });

  it('gives up where the upper folder is missing or not a folder, and at the time limit', async () => {
    store({ top: 'hello' });
    expect(
      await readContainerSizes(
        root,
        'overlay',
        [CONTAINER],
        storeReads(() => 0),
      ),
    ).toBeUndefined();
    rmSync(join(root, 'overlay', LAYER, 'diff'), { recursive: true });
    expect(await readContainerSizes(root, 'overlay', [CONTAINER])).toBeUndefined();
    writeFileSync(join(root, 'overlay', LAYER, 'diff'), 'a file');
    expect(await readContainerSizes(root, 'overlay', [CONTAINER])).toBeUndefined();
  });

  it('gives up where the records are not readable lists', async () => {
    store();
    writeFileSync(join(root, 'overlay-containers/containers.json'), '{"not":"a list"}');
    expect(await readContainerSizes(root, 'overlay', [CONTAINER])).toBeUndefined();
  });

  it('sizes no container at all without reading a walk', async () => {
    store();
    expect(await readContainerSizes(root, 'overlay', [])).toEqual(new Map());
  });
});
