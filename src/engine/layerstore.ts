// Docker's classic image store and Podman's containers/storage, read from disk where it is on this machine and readable (the action runs
// as root on the daemon's host): each image's config (its layers' diff IDs) and each layer's size, the
// figures the API's inspect and history give, without one or two requests per image. The layout is
// `<data root>/image/<storage driver>/`: `imagedb/content/sha256/<id>` holds the config,
// `imagedb/metadata/sha256/<id>/lastUpdated` the last tag time, `layerdb/sha256/<chain ID>/size` the
// layer's size (what `LayersSize`, history and `docker image ls` count).

import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

/** What the classic store says of one image. */
export interface StoredImage {
  layers: string[];
  sizes: number[];
  /** Epoch ms of the last tag, 0 when never tagged (as the inspect's `Metadata.LastTagTime`). */
  lastTagMs: number;
}

const hexOf = (digest: string) => /^sha256:([0-9a-f]{64})$/.exec(digest)?.[1];

/**
 * The store's folder (`<root>/image/<driver>`) when the first image's config is readable there;
 * undefined otherwise (a remote daemon, no permission, another store).
 */
export function classicStoreFor(
  rootDir: string,
  driver: string,
  firstImageId: string | undefined,
): string | undefined {
  const hex = firstImageId && hexOf(firstImageId);
  if (!rootDir || !/^[\w.-]+$/.test(driver) || !hex) return undefined;
  const dir = join(rootDir, 'image', driver);
  return readConfigLayers(dir, hex) ? dir : undefined;
}

/**
 * The limits of what is read from a store on disk. Every file there is a store's own, but one that
 * pulled a crafted image (an index listing itself, a manifest naming a layer) or a planted file must
 * not cost the run more than its time limit or its memory.
 */
export const STORE_LIMITS = {
  /**
   * A manifest, index or image config: registries refuse manifests over 4 MiB (distribution's limit);
   * configs are a few KiB (history and labels of up to 127 layers).
   */
  documentBytes: 4 * 1024 * 1024,
  /** A layer's `size` or an image's `lastUpdated`: one number or timestamp. */
  smallBytes: 64,
  /** Podman's images.json and layers.json: one record per image or layer, ~1 KiB each; 256 MiB is 100,000s. */
  podmanBytes: 256 * 1024 * 1024,
  /** Warnings kept per run: enough to name the cause, not a flood of annotations. */
  warnings: 10,
};

/**
 * What a run read from the stores and where a limit cut a read short. `timeLeft` is the run's (the
 * DockerApi's): no read starts after its time limit.
 */
export interface StoreReads {
  timeLeft: () => number;
  /** Files opened and bytes read, for the bounds' tests. */
  files: number;
  bytes: number;
  /** Why a read fell back to the API: digests, sizes and limits only, never a file's text. */
  warnings: string[];
  /** Further warnings beyond STORE_LIMITS.warnings, counted. */
  moreWarnings: number;
}

export function storeReads(timeLeft: () => number = () => Infinity): StoreReads {
  return { timeLeft, files: 0, bytes: 0, warnings: [], moreWarnings: 0 };
}

/** Adds a warning once (many images may share the document that hit a limit). */
export function warnOnce(reads: StoreReads | undefined, text: string): void {
  if (!reads || reads.warnings.includes(text)) return;
  if (reads.warnings.length < STORE_LIMITS.warnings) reads.warnings.push(text);
  else reads.moreWarnings++;
}

/** The run's warnings from its store reads, with a count of those left out. */
export function storeWarnings(reads: StoreReads): string[] {
  const more = reads.moreWarnings;
  return more > 0 ? [...reads.warnings, `${more} more limits hit reading the image store`] : reads.warnings;
}

export const mib = (bytes: number) => `${Math.round((bytes / 1024 / 1024) * 10) / 10} MiB`;

/**
 * A file's bytes when it is a regular file of at most `cap` bytes: `{ over }` with its size when
 * larger, undefined when absent, unreadable or not a regular file. The last component is opened
 * without following a symlink and without blocking on a FIFO; the size is the open file's (fstat),
 * and no more than `cap` + 1 bytes are ever read, even from a file that grows meanwhile.
 */
export type Capped = { data: Buffer; size: number } | { over: number } | undefined;
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

export function readCappedSync(file: string, cap: number, reads?: StoreReads): Capped {
  let fd: number;
  try {
    fd = openSync(file, OPEN_FLAGS);
  } catch {
    return undefined;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) return undefined;
    if (stats.size > cap) return { over: stats.size };
    const buffer = Buffer.allocUnsafe(stats.size + 1);
    let length = 0;
    for (let n = 1; n > 0 && length < buffer.length; length += n) {
      n = readSync(fd, buffer, length, buffer.length - length, length);
    }
    // More than fstat said: written meanwhile, so neither this text nor its size can be trusted.
    return length > stats.size ? undefined : counted(reads, buffer.subarray(0, length), stats.size);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * As readCappedSync, asynchronously. With `json`, a file whose first byte opens no JSON object is not
 * read further: its data is that one byte, which no JSON parse accepts.
 */
export async function readCapped(
  file: string,
  cap: number,
  reads?: StoreReads,
  json = false,
): Promise<Capped> {
  const handle = await open(file, OPEN_FLAGS).catch(() => undefined);
  if (!handle) return undefined;
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return undefined;
    if (stats.size > cap) return { over: stats.size };
    const buffer = Buffer.allocUnsafe(stats.size + 1);
    // A layer blob (gzip, tar) is told by its first byte, without reading the rest.
    let length = json ? (await handle.read(buffer, 0, 1, 0)).bytesRead : 0;
    if (json && length === 1 && buffer[0] !== 0x7b) return counted(reads, buffer.subarray(0, 1), stats.size);
    for (let n = 1; n > 0 && length < buffer.length; length += n) {
      n = (await handle.read(buffer, length, buffer.length - length, length)).bytesRead;
    }
    return length > stats.size ? undefined : counted(reads, buffer.subarray(0, length), stats.size);
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

function counted(reads: StoreReads | undefined, data: Buffer, size: number): Capped {
  if (reads) {
    reads.files++;
    reads.bytes += data.length;
  }
  return { data, size };
}

/**
 * A small file's text, or undefined (also when over `cap`). Read synchronously: there are thousands of
 * them of a few hundred bytes each, and a hop through libuv's thread pool (4 threads) costs more than the
 * read itself.
 */
function readSmall(file: string, cap = STORE_LIMITS.smallBytes): string | undefined {
  const read = readCappedSync(file, cap);
  return read && 'data' in read ? read.data.toString('utf8') : undefined;
}

/**
 * An image config's layers (`rootfs.diff_ids`, what the API's inspect gives as `RootFS.Layers`), or
 * undefined when the document is no image config with sha256 diff IDs. Shared by both stores' readers.
 */
export function configDiffIds(config: unknown): string[] | undefined {
  const ids = (config as { rootfs?: { diff_ids?: unknown } } | undefined)?.rootfs?.diff_ids;
  return Array.isArray(ids) && ids.every((id) => typeof id === 'string' && hexOf(id))
    ? (ids as string[])
    : undefined;
}

function readConfigLayers(dir: string, hex: string, reads?: StoreReads): string[] | undefined {
  const read = readCappedSync(join(dir, 'imagedb/content/sha256', hex), STORE_LIMITS.documentBytes, reads);
  if (read && 'over' in read) {
    warnOnce(reads, overCap(`image config sha256:${hex}`, read.over, STORE_LIMITS.documentBytes));
  }
  try {
    return read && 'data' in read ? configDiffIds(JSON.parse(read.data.toString('utf8'))) : undefined;
  } catch {
    return undefined;
  }
}

/** How each store warning ends: what the run does instead of the read it cut short. */
export const API_INSTEAD = 'its images are read through the API instead';

/** The warning for a file over its cap (`what` names it by digest or by the store's own file name). */
export const overCap = (what: string, size: number, cap: number) =>
  `image store: ${what} is ${mib(size)} (${size} bytes), over the ${mib(cap)} cap for one read; ${API_INSTEAD}`;

/** The warning for reads stopped by the run's time limit. */
export const TIME_LIMIT_WARNING =
  "image store: the run's time limit was reached while reading it; the images left are read through the API";

/** A layer's chain ID: its diff ID for the bottom layer, else sha256 of "<parent chain ID> <diff ID>". */
export function chainIds(diffIds: string[]): string[] {
  const chains: string[] = [];
  for (const diffId of diffIds) {
    const parent = chains.at(-1);
    chains.push(
      parent ? `sha256:${createHash('sha256').update(`${parent} ${diffId}`).digest('hex')}` : diffId,
    );
  }
  return chains;
}

/**
 * One image from the store; undefined when any part is missing or unreadable (removed meanwhile, or
 * another layout), so that the caller asks the API instead. `sizes` caches layer sizes by chain ID
 * across images (most layers are shared); the last tag time is read only when `tagTime` asks for it.
 */
export function readStoredImage(
  dir: string,
  imageId: string,
  sizes: Map<string, number | undefined>,
  tagTime = false,
  reads?: StoreReads,
): StoredImage | undefined {
  if (reads && reads.timeLeft() <= 0) {
    warnOnce(reads, TIME_LIMIT_WARNING);
    return undefined;
  }
  const hex = hexOf(imageId);
  const layers = hex && readConfigLayers(dir, hex, reads);
  if (!hex || !layers) return undefined;
  const layerSizes: number[] = [];
  for (const chain of chainIds(layers)) {
    if (!sizes.has(chain)) {
      const text = readSmall(join(dir, 'layerdb/sha256', hexOf(chain)!, 'size'))?.trim() ?? '';
      sizes.set(chain, /^\d+$/.test(text) ? Number(text) : undefined);
    }
    const bytes = sizes.get(chain);
    if (bytes === undefined) return undefined;
    layerSizes.push(bytes);
  }
  const tagged = tagTime
    ? Date.parse(readSmall(join(dir, 'imagedb/metadata/sha256', hex, 'lastUpdated')) ?? '')
    : 0;
  return { layers, sizes: layerSizes, lastTagMs: Number.isFinite(tagged) && tagged > 0 ? tagged : 0 };
}

interface PodmanImageRecord {
  id?: string;
  layer?: string;
}
interface PodmanLayerRecord {
  id?: string;
  parent?: string;
  'diff-digest'?: string;
  'diff-size'?: number;
}

/**
 * Podman's images (containers/storage): `<graph root>/<driver>-images/images.json` names each image's top
 * layer, `<driver>-layers/layers.json` each layer's parent, diff ID and size (what Podman's history and
 * image sizes count). Two files for every image, instead of an inspect and a history per image through
 * the service (~100 ms and ~40 ms each with 500 images on Podman 4.3). Undefined when not readable; an
 * image whose chain is incomplete is left out, so that the API is asked for it.
 */
export async function readPodmanStore(
  rootDir: string,
  driver: string,
  reads?: StoreReads,
): Promise<Map<string, StoredImage> | undefined> {
  if (!rootDir || !/^[\w.-]+$/.test(driver)) return undefined;
  const images = await readPodmanList<PodmanImageRecord>(
    join(rootDir, `${driver}-images`),
    'images.json',
    reads,
  );
  const layers =
    images &&
    (await readPodmanList<PodmanLayerRecord>(join(rootDir, `${driver}-layers`), 'layers.json', reads));
  if (!images || !layers) return undefined;
  const byId = new Map(layers.filter((l) => l?.id).map((l) => [l.id!, l]));
  const result = new Map<string, StoredImage>();
  for (const image of images) {
    if (!image?.id || !image.layer) continue;
    const chain: PodmanLayerRecord[] = [];
    for (let id: string | undefined = image.layer; id; id = byId.get(id)?.parent) {
      const layer = byId.get(id);
      if (!layer || chain.length > 1000) break;
      chain.push(layer);
    }
    const complete =
      chain.length > 0 &&
      !chain.at(-1)!.parent &&
      chain.every((l) => hexOf(l['diff-digest'] ?? '') && Number.isInteger(l['diff-size']));
    if (!complete) continue;
    chain.reverse();
    result.set(`sha256:${image.id}`, {
      layers: chain.map((l) => l['diff-digest']!),
      sizes: chain.map((l) => l['diff-size']!),
      lastTagMs: 0,
    });
  }
  return result;
}

/** One of Podman's JSON lists, when a regular file under its cap; undefined otherwise (the API is asked). */
export async function readPodmanList<T>(
  folder: string,
  name: string,
  reads?: StoreReads,
): Promise<T[] | undefined> {
  const read = await readCapped(join(folder, name), STORE_LIMITS.podmanBytes, reads);
  if (read && 'over' in read)
    warnOnce(reads, overCap(`Podman's ${name}`, read.over, STORE_LIMITS.podmanBytes));
  try {
    const list: unknown = read && 'data' in read ? JSON.parse(read.data.toString('utf8')) : undefined;
    return Array.isArray(list) ? (list as T[]) : undefined;
  } catch {
    return undefined;
  }
}
