// The containers' writable-layer sizes on Podman before 4.6, read from containers/storage's own files
// where they are on this machine and readable (the action runs as root on the service's host): what
// Podman's `GET /containers/json?size=1` gives as `SizeRw`, without its cost. Podman 4.3 answers that
// list by sizing every container's whole root file system too, each image layer walked again for every
// container (4 s at 500 images and 100 containers), a size the inventory never uses.
//
// Podman before 4.6 sizes the writable layer as containers/storage's DiffSize of the container's layer
// against its parent (podman v4.3.1 libpod/container_internal.go rwSize). With the overlay driver using
// the kernel's native diff (no mount program; `/info` says "Native Overlay Diff": "true") and the layer's
// first lower directory its parent's, that is a walk of the layer's upper directory: the apparent sizes
// (lstat) of everything but directories, each inode once (containers/storage drivers/overlay DiffSize,
// pkg/directory Usage). That is what this reader computes. Anything else (a container of another
// store or driver, one created from a root file system, a layer diffed the naive way, a file that
// vanished during the walk) makes it give up, and the API is asked instead. From 4.6 Podman sizes the
// container differently (containers/storage ContainerSize) and answers the list quickly: the API is asked.

import { lstat, readdir, readlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { readCapped, readPodmanList, type StoreReads } from './layerstore';
import { mapPool } from './pool';

interface ContainerRecord {
  id?: unknown;
  layer?: unknown;
}

interface LayerRecord {
  id?: unknown;
  parent?: unknown;
}

const HEX = /^[0-9a-f]{64}$/;

/** What `/version` and `/info` say of the service, as the reader needs it. */
export interface PodmanService {
  /** Podman's version (`4.3.1`). */
  version: string;
  rootDir: string;
  driver: string;
  driverStatus: [string, string][] | null | undefined;
}

/**
 * Whether the service sizes a container's writable layer the way readContainerSizes reads it: Podman before
 * 4.6 on the overlay driver with the native diff.
 */
export function sizesReadable(service: PodmanService): boolean {
  if (!sizedByDiff(service.version)) return false;
  const native = (service.driverStatus ?? []).some(
    ([key, value]) => key === 'Native Overlay Diff' && value === 'true',
  );
  return service.driver === 'overlay' && native && service.rootDir !== '';
}

/** Whether this version of Podman sizes a container's writable layer by its diff alone (before 4.6). */
export function sizedByDiff(version: string): boolean {
  const [major, minor] = version.split('.').map((part) => Number.parseInt(part, 10));
  return Number.isInteger(major) && Number.isInteger(minor) && (major < 4 || (major === 4 && minor < 6));
}

/** Stops the read: the API is asked instead. */
class GiveUp extends Error {}

/**
 * Each listed container's writable-layer size, by ID, as Podman before 4.6 gives it as `SizeRw`, on a
 * service that sizes them so (see sizesReadable); undefined where any of them cannot be read exactly
 * (see the top of this file).
 */
export async function readContainerSizes(
  rootDir: string,
  driver: string,
  ids: string[],
  reads?: StoreReads,
): Promise<Map<string, number> | undefined> {
  if (!rootDir || !/^[\w.-]+$/.test(driver) || ids.some((id) => !HEX.test(id))) return undefined;
  const containers = await readPodmanList<ContainerRecord>(
    join(rootDir, `${driver}-containers`),
    'containers.json',
    reads,
  );
  const layers =
    containers &&
    (await readPodmanList<LayerRecord>(join(rootDir, `${driver}-layers`), 'layers.json', reads));
  if (!containers || !layers) return undefined;
  const layerOf = new Map(containers.map((c) => [c?.id, c?.layer]));
  const parentOf = new Map(layers.map((l) => [l?.id, l?.parent]));
  const home = join(rootDir, driver);
  const timeLeft = reads?.timeLeft ?? (() => Infinity);
  try {
    const sizes = await mapPool(ids, 4, async (id) => {
      const layer = layerOf.get(id);
      if (typeof layer !== 'string' || !HEX.test(layer) || !parentOf.has(layer)) throw new GiveUp();
      const parent = parentOf.get(layer) ?? '';
      if (typeof parent !== 'string' || (parent !== '' && !HEX.test(parent))) throw new GiveUp();
      if (!(await lowerIsParent(home, layer, parent))) throw new GiveUp();
      return usage(join(home, layer, 'diff'), timeLeft);
    });
    return new Map(ids.map((id, i) => [id, sizes[i]]));
  } catch (error) {
    if (error instanceof GiveUp || isFsError(error)) return undefined;
    throw error;
  }
}

/** A failed file system call (ENOENT, EACCES, …): it carries an error code. */
const isFsError = (error: unknown) =>
  typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string';

/** A layer's `lower` file: its lower folders' links, `l/` and 26 characters each, up to 500 of them. */
const LOWER_BYTES = 16 * 1024;

/** Whether anything is at `file` (not followed if a symlink). */
const exists = (file: string) =>
  lstat(file).then(
    () => true,
    () => false,
  );

/**
 * The overlay driver's isParent: the layer's first lower directory is its parent's (a layer without a
 * parent has none). Otherwise Podman diffs the naive way, which this reader does not.
 */
async function lowerIsParent(home: string, layer: string, parent: string): Promise<boolean> {
  const file = join(home, layer, 'lower');
  const read = await readCapped(file, LOWER_BYTES);
  if (!read) return parent === '' && !(await exists(file));
  if (parent === '' || 'over' in read) return false;
  const first = read.data.toString('utf8').split(':')[0];
  // Each lower is a link under `l/`, to `../<layer>/diff`, resolved as the driver does.
  if (!/^l\/[A-Za-z0-9]+$/.test(first)) return false;
  const target = await readlink(join(home, first));
  return dirname(join(home, 'link', target)) === join(home, parent);
}

/**
 * containers/storage's directory Usage: the apparent sizes of everything below `dir` but directories,
 * each inode once, not following symlinks. Any error gives up, as Podman's own walk fails then too.
 */
async function usage(dir: string, timeLeft: () => number): Promise<number> {
  const root = await lstat(dir);
  if (!root.isDirectory()) throw new GiveUp();
  const seen = new Set<bigint>();
  let size = 0;
  const pending = [dir];
  while (pending.length > 0) {
    if (timeLeft() <= 0) throw new GiveUp();
    const folder = pending.pop()!;
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) {
        pending.push(path);
        continue;
      }
      const stats = await lstat(path, { bigint: true });
      if (stats.isDirectory()) throw new GiveUp();
      if (seen.has(stats.ino)) continue;
      seen.add(stats.ino);
      size += Number(stats.size);
    }
  }
  return size;
}
