// The containerd image store's content store, read from disk where it is on this machine and readable
// (the action runs as root on the daemon's host): each image's manifest, config and layer blobs, with
// their exact sizes. The Docker API does not list an image's blobs, only their total.

import { constants } from 'node:fs';
import { access, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  API_INSTEAD,
  configDiffIds,
  overCap,
  readCapped,
  STORE_LIMITS,
  storeReads,
  TIME_LIMIT_WARNING,
  warnOnce,
  type StoreReads,
} from './layerstore';
import type { Blob } from '../types';

const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

/** As read from a document: any field may have any shape. */
interface Descriptor {
  mediaType?: unknown;
  digest: string;
  size?: unknown;
}

interface ManifestOrIndex {
  mediaType?: string;
  rootfs?: unknown;
  manifests?: unknown;
  config?: Descriptor;
  layers?: unknown;
}

/**
 * The content store holding the images' blobs: dockerd's own containerd keeps it under the data root,
 * a system containerd (Docker CE's packages) under /var/lib/containerd. Undefined when neither holds
 * the first image's blob (not this machine's daemon, or not readable).
 */
export async function contentStoreFor(rootDir: string, targets: string[]): Promise<string | undefined> {
  if (targets.length === 0) return undefined;
  for (const dir of contentCandidates(rootDir)) {
    if (await blobSize(dir, targets[0])) return dir;
  }
  return undefined;
}

/** Where a content store may be: dockerd's own containerd's, then a system containerd's. */
const contentCandidates = (rootDir: string) => [
  ...(rootDir ? [join(rootDir, 'containerd', 'daemon', 'io.containerd.content.v1.content')] : []),
  '/var/lib/containerd/io.containerd.content.v1.content',
];

function blobPath(dir: string, digest: string): string | undefined {
  const match = /^(sha256|sha512):([0-9a-f]{64,128})$/.exec(digest);
  return match ? join(dir, 'blobs', match[1], match[2]) : undefined;
}

async function blobSize(dir: string, digest: string): Promise<number | undefined> {
  const file = blobPath(dir, digest);
  if (!file) return undefined;
  try {
    return (await stat(file)).size;
  } catch {
    return undefined;
  }
}

/**
 * The bounds of one image's read (a crafted index of a few KiB, listing itself or a diamond of indexes,
 * must not cost more than a real one), generous against real images: a multi-arch index lists tens of
 * manifests (a platform's and its attestation's), and nests at most an index of indexes.
 */
export const CONTENT_LIMITS = {
  /** Levels below the image's target: index → manifest is 1, index → index → manifest 2. */
  depth: 3,
  /**
   * Manifests and indexes opened per image: a multi-arch index lists tens (for each of up to ~10
   * platforms its manifest and its attestation's); 256 leaves room for several times that.
   */
  documents: 256,
  /** Descriptors looked at per image: up to 127 layers (overlay's limit) in each of 150 manifests. */
  descriptors: 20_000,
  /**
   * The store-wide scan for the manifests above a config (Docker 26): documents parsed, and references
   * kept (its memory); a few documents per image, for tens of thousands of images.
   */
  scanDocuments: 200_000,
  scanReferences: 1_000_000,
};

/** A limit hit while reading the content store: the image (or, for the scan, the store) falls back. */
class StoreLimit extends Error {}

const JSON_TYPE = /^application\/json$|\+json$/;

/** The descriptors of a list from a document (of any shape), counted against the image's limit. */
function descriptorsOf(list: unknown, image: ImageRead, where: string): Descriptor[] {
  if (!Array.isArray(list)) return [];
  image.descriptors += list.length;
  if (image.descriptors > CONTENT_LIMITS.descriptors) {
    throw new StoreLimit(`${where} lists more than ${CONTENT_LIMITS.descriptors} blobs`);
  }
  return list.filter((d): d is Descriptor => typeof d?.digest === 'string');
}

/** A manifest, index or config: `doc` when it is a JSON object, its size in any case; undefined when absent. */
async function readDocument(
  file: string,
  digest: string,
  reads: StoreReads,
  declared?: unknown,
): Promise<{ size: number; doc?: ManifestOrIndex } | undefined> {
  if (reads.timeLeft() <= 0) throw new StoreLimit(TIME_LIMIT_WARNING);
  const cap = STORE_LIMITS.documentBytes;
  // The descriptor's size first: a manifest naming a layer is refused before it is opened.
  if (typeof declared === 'number' && declared > cap) throw new StoreLimit(overCap(digest, declared, cap));
  const read = await readCapped(file, cap, reads, true);
  if (!read) return undefined;
  if ('over' in read) throw new StoreLimit(overCap(digest, read.over, cap));
  try {
    return { size: read.size, doc: JSON.parse(read.data.toString('utf8')) as ManifestOrIndex };
  } catch {
    return { size: read.size };
  }
}

/**
 * Which manifests and indexes refer to each blob (config, manifest), from one scan of the content
 * store's small JSON documents: for an image whose ID is its config's digest (Docker 26 on this store),
 * the way up to the manifest or index that holds it. Only files that open a JSON object are read whole;
 * rejects with a StoreLimit past the scan's limits or the run's time limit.
 */
export async function referrers(dir: string, reads = storeReads()): Promise<Map<string, string[]>> {
  const parents = new Map<string, string[]>();
  const folder = join(dir, 'blobs', 'sha256');
  const names = await readdir(folder).catch(() => [] as string[]);
  let documents = 0;
  let references = 0;
  for (const name of names.filter((n) => /^[0-9a-f]{64}$/.test(n))) {
    if (reads.timeLeft() <= 0) throw new StoreLimit(TIME_LIMIT_WARNING);
    const read = await readCapped(join(folder, name), STORE_LIMITS.documentBytes, reads, true);
    if (!read || 'over' in read || read.data[0] !== 0x7b) continue;
    let doc: ManifestOrIndex;
    try {
      doc = JSON.parse(read.data.toString('utf8')) as ManifestOrIndex;
    } catch {
      continue;
    }
    const children = [...(Array.isArray(doc.manifests) ? doc.manifests : []), doc.config];
    references += children.length;
    if (++documents > CONTENT_LIMITS.scanDocuments || references > CONTENT_LIMITS.scanReferences) {
      throw new StoreLimit(
        `the content store holds more than ${CONTENT_LIMITS.scanDocuments} documents or ` +
          `${CONTENT_LIMITS.scanReferences} references, too many to scan for the manifests above image configs`,
      );
    }
    for (const child of children) {
      if (typeof child?.digest !== 'string') continue;
      const list = parents.get(child.digest) ?? [];
      list.push(`sha256:${name}`);
      parents.set(child.digest, list);
    }
  }
  return parents;
}

/** The documents at the top of the references above `digest` (itself when nothing refers to it). */
export function rootsOf(digest: string, parents: Map<string, string[]>): string[] {
  const roots = new Set<string>();
  const seen = new Set<string>();
  const up = (d: string, depth: number): void => {
    if (seen.has(d) || depth > 4) return;
    seen.add(d);
    const above = parents.get(d) ?? [];
    if (above.length === 0) roots.add(d);
    for (const p of above) up(p, depth + 1);
  };
  up(digest, 0);
  return [...roots];
}

/** One image's read so far: its blobs and sizes, the documents already expanded, and its counts. */
interface ImageRead {
  /** The digest the read began at (checked as one), for warnings. */
  target: string;
  blobs: Map<string, number>;
  /** Each digest is expanded once (whether it was a manifest or index): a cycle ends where it began. */
  expanded: Map<string, boolean>;
  documents: number;
  descriptors: number;
  /** Image manifests present (a platform each; attestations' left out). */
  manifests: number;
  /** Bytes of the indexes among the blobs. */
  indexBytes: number;
}

const newImageRead = (target: string): ImageRead => ({
  target,
  blobs: new Map(),
  expanded: new Map(),
  documents: 0,
  descriptors: 0,
  manifests: 0,
  indexBytes: 0,
});

/** A blob only sized, never read (layers, configs, and whatever an index lists that is not JSON). */
async function addBlob(dir: string, d: Descriptor, image: ImageRead): Promise<void> {
  if (image.blobs.has(d.digest)) return;
  const size = await blobSize(dir, d.digest);
  if (size !== undefined) image.blobs.set(d.digest, size);
}

/**
 * Reads the manifest or index `digest` into `image`: true when it is one (a config, missing or
 * unreadable blob gives false). Throws a StoreLimit past a limit.
 */
async function expand(
  dir: string,
  digest: string,
  depth: number,
  image: ImageRead,
  reads: StoreReads,
  declared?: unknown,
): Promise<boolean> {
  const file = blobPath(dir, digest);
  if (!file) return false;
  const known = image.expanded.get(digest);
  if (known !== undefined) return known;
  if (depth > CONTENT_LIMITS.depth) {
    throw new StoreLimit(`${digest} is nested more than ${CONTENT_LIMITS.depth} indexes deep`);
  }
  if (++image.documents > CONTENT_LIMITS.documents) {
    throw new StoreLimit(
      `${image.target} refers to more than ${CONTENT_LIMITS.documents} manifests and indexes`,
    );
  }
  image.expanded.set(digest, true);
  const read = await readDocument(file, digest, reads, declared);
  if (read) image.blobs.set(digest, read.size);
  // An image config (an ID that is no manifest digest): the manifest is unknown from here.
  if (!read?.doc || read.doc.rootfs !== undefined) {
    image.expanded.set(digest, false);
    return false;
  }
  const doc = read.doc;
  if (INDEX_TYPES.has(doc.mediaType ?? '') || doc.manifests) {
    image.indexBytes += read.size;
    // Only the platforms (and attestations) present here take space; only JSON is read.
    for (const m of descriptorsOf(doc.manifests, image, digest)) {
      if (m.mediaType === undefined || JSON_TYPE.test(String(m.mediaType))) {
        await expand(dir, m.digest, depth + 1, image, reads, m.size);
      } else await addBlob(dir, m, image);
    }
    return true;
  }
  const layers = descriptorsOf(doc.layers, image, digest);
  for (const d of descriptorsOf([doc.config], image, digest).concat(layers)) await addBlob(dir, d, image);
  // An attestation (BuildKit's provenance or SBOM) is a manifest of in-toto layers, never unpacked.
  if (!layers.some((d) => IN_TOTO.test(String(d.mediaType)))) image.manifests++;
  return true;
}

const IN_TOTO = /^application\/vnd\.in-toto\+json$/;

/**
 * The blobs an image references that are present in the content store, from its target (the digest of
 * its manifest or index: the `Descriptor` the API gives, which is also the image ID on Docker 28): the
 * index, each present manifest, its config and layer blobs. Undefined when the target cannot be read,
 * or when a limit (CONTENT_LIMITS, the size cap, the run's time) is hit: then `reads` holds a warning
 * and the image's size comes from the API.
 */
export async function readImageBlobs(
  dir: string,
  target: string,
  parents?: () => Promise<Map<string, string[]>>,
  reads = storeReads(),
): Promise<Blob[] | undefined> {
  return (await readImageContent(dir, target, parents, reads))?.blobs;
}

/**
 * An image's blobs (see readImageBlobs), how many image manifests (platforms) of it are present, and the
 * bytes of its indexes among them (the image list's Size leaves those out).
 */
export interface ImageContent {
  blobs: Blob[];
  manifests: number;
  indexBytes: number;
}

/** readImageBlobs, with the image's count of present image manifests. */
export async function readImageContent(
  dir: string,
  target: string,
  parents?: () => Promise<Map<string, string[]>>,
  reads = storeReads(),
): Promise<ImageContent | undefined> {
  try {
    const image = await readImage(dir, target, parents, reads);
    return (
      image && {
        blobs: [...image.blobs].map(([digest, size]) => ({ key: digest, size })),
        manifests: image.manifests,
        indexBytes: image.indexBytes,
      }
    );
  } catch (error) {
    if (!(error instanceof StoreLimit)) throw error;
    warnOnce(reads, limitWarning(error));
    return undefined;
  }
}

const limitWarning = (error: StoreLimit) =>
  error.message.startsWith('image store:') ? error.message : `image store: ${error.message}; ${API_INSTEAD}`;

async function readImage(
  dir: string,
  target: string,
  parents: (() => Promise<Map<string, string[]>>) | undefined,
  reads: StoreReads,
): Promise<ImageRead | undefined> {
  const image = newImageRead(target);
  if (await expand(dir, target, 0, image, reads)) return image;
  // An ID that is the config's digest: find the manifests (and indexes) that hold it.
  if (!parents || !(await blobSize(dir, target))) return undefined;
  const roots = rootsOf(target, await parents()).filter((root) => root !== target);
  if (roots.length === 0) return undefined;
  const above = newImageRead(target);
  for (const root of roots) if (!(await expand(dir, root, 0, above, reads))) return undefined;
  return above;
}

/**
 * An image's layers (its config's `rootfs.diff_ids`, what the API's inspect gives as `RootFS.Layers`)
 * when its target is a single-platform manifest whose config is in the content store; undefined for an
 * index (the platform's choice is the daemon's) or anything unreadable or over a limit, where the
 * inspect is asked.
 */
export async function configLayers(
  dir: string,
  manifestDigest: string,
  reads = storeReads(),
): Promise<string[] | undefined> {
  const read = async (digest: string, declared?: unknown) => {
    const file = blobPath(dir, digest);
    return file ? (await readDocument(file, digest, reads, declared))?.doc : undefined;
  };
  try {
    const manifest = await read(manifestDigest);
    const config = manifest?.config;
    if (
      typeof config?.digest !== 'string' ||
      manifest!.manifests ||
      INDEX_TYPES.has(manifest!.mediaType ?? '')
    ) {
      return undefined;
    }
    return configDiffIds(await read(config.digest, config.size));
  } catch (error) {
    if (!(error instanceof StoreLimit)) throw error;
    warnOnce(reads, limitWarning(error));
    return undefined;
  }
}

/**
 * Whether a content store this machine can read is where the daemon keeps it (see contentStoreFor): the
 * blobs' folder can be listed. Checked before the image list is in, so it names no blob.
 */
export async function contentStoreReadable(rootDir: string): Promise<boolean> {
  for (const dir of contentCandidates(rootDir)) {
    if (
      await access(join(dir, 'blobs', 'sha256'), constants.R_OK | constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return true;
  }
  return false;
}

/** Bytes of every blob in the content store. */
export async function contentTotal(dir: string): Promise<number> {
  const folder = join(dir, 'blobs', 'sha256');
  let total = 0;
  for (const name of await readdir(folder).catch(() => [] as string[])) {
    total += (await stat(join(folder, name)).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

/**
 * Whether the daemon's `LayersSize` counts the content store on the containerd image store. Checked
 * here: Docker 28.5 counts it (blobs and snapshots), Docker 26.1 only the snapshots.
 */
export function layersCountContent(version: string): boolean {
  return Number(/^(\d+)/.exec(version)?.[1] ?? 0) >= 28;
}
