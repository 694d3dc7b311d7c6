// The containerd image store's content store, read from disk where it is on this machine and readable
// (the action runs as root on the daemon's host): each image's manifest, config and layer blobs, with
// their exact sizes. The Docker API does not list an image's blobs, only their total.

import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { configDiffIds } from './layerstore';
import type { Blob } from '../types';

const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
}

interface ManifestOrIndex {
  mediaType?: string;
  rootfs?: unknown;
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
}

/**
 * The content store holding the images' blobs: dockerd's own containerd keeps it under the data root,
 * a system containerd (Docker CE's packages) under /var/lib/containerd. Undefined when neither holds
 * the first image's blob (not this machine's daemon, or not readable).
 */
export async function contentStoreFor(rootDir: string, targets: string[]): Promise<string | undefined> {
  const candidates = [
    ...(rootDir ? [join(rootDir, 'containerd', 'daemon', 'io.containerd.content.v1.content')] : []),
    '/var/lib/containerd/io.containerd.content.v1.content',
  ];
  if (targets.length === 0) return undefined;
  for (const dir of candidates) {
    if (await blobSize(dir, targets[0])) return dir;
  }
  return undefined;
}

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

/** Manifests and indexes are small JSON documents; layer blobs are never read. */
const MAX_DOCUMENT = 4 * 1024 * 1024;

/**
 * Which manifests and indexes refer to each blob (config, manifest), from one scan of the content
 * store's small JSON documents: for an image whose ID is its config's digest (Docker 26 on this store),
 * the way up to the manifest or index that holds it.
 */
export async function referrers(dir: string): Promise<Map<string, string[]>> {
  const parents = new Map<string, string[]>();
  const folder = join(dir, 'blobs', 'sha256');
  const names = await readdir(folder).catch(() => [] as string[]);
  for (const name of names) {
    const file = join(folder, name);
    const size = (await stat(file).catch(() => undefined))?.size ?? 0;
    if (size === 0 || size > MAX_DOCUMENT) continue;
    let doc: ManifestOrIndex;
    try {
      const text = await readFile(file, 'utf8');
      if (!text.startsWith('{')) continue;
      doc = JSON.parse(text) as ManifestOrIndex;
    } catch {
      continue;
    }
    const digest = `sha256:${name}`;
    for (const child of [...(doc.manifests ?? []), ...(doc.config ? [doc.config] : [])]) {
      const list = parents.get(child.digest) ?? [];
      list.push(digest);
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

/**
 * The blobs an image references that are present in the content store, from its target (the digest of
 * its manifest or index: the `Descriptor` the API gives, which is also the image ID on Docker 28): the
 * index, each present manifest, its config and layer blobs. Undefined when the target cannot be read.
 */
export async function readImageBlobs(
  dir: string,
  target: string,
  parents?: () => Promise<Map<string, string[]>>,
): Promise<Blob[] | undefined> {
  const blobs = new Map<string, number>();
  const visit = async (digest: string, depth: number): Promise<boolean> => {
    const file = blobPath(dir, digest);
    if (!file || depth > 3) return false;
    let doc: ManifestOrIndex;
    try {
      const text = await readFile(file, 'utf8');
      blobs.set(digest, Buffer.byteLength(text));
      doc = JSON.parse(text) as ManifestOrIndex;
    } catch {
      return false;
    }
    // An image config (an ID that is no manifest digest): the manifest is unknown from here.
    if (doc.rootfs !== undefined) return false;
    if (INDEX_TYPES.has(doc.mediaType ?? '') || doc.manifests) {
      // Only the platforms (and attestations) present here take space.
      for (const m of doc.manifests ?? []) await visit(m.digest, depth + 1);
      return true;
    }
    for (const d of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) {
      const size = await blobSize(dir, d.digest);
      if (size !== undefined) blobs.set(d.digest, size);
    }
    return true;
  };
  if (!(await visit(target, 0))) {
    // An ID that is the config's digest: find the manifests (and indexes) that hold it.
    if (!parents || !(await blobSize(dir, target))) return undefined;
    const roots = rootsOf(target, await parents()).filter((root) => root !== target);
    if (roots.length === 0) return undefined;
    blobs.clear();
    for (const root of roots) if (!(await visit(root, 0))) return undefined;
  }
  return [...blobs].map(([digest, size]) => ({ key: digest, size }));
}

/**
 * An image's layers (its config's `rootfs.diff_ids`, what the API's inspect gives as `RootFS.Layers`)
 * when its target is a single-platform manifest whose config is in the content store; undefined for an
 * index (the platform's choice is the daemon's) or anything unreadable, where the inspect is asked.
 */
export async function configLayers(dir: string, manifestDigest: string): Promise<string[] | undefined> {
  const read = async (digest: string): Promise<ManifestOrIndex | undefined> => {
    const file = blobPath(dir, digest);
    try {
      return file ? (JSON.parse(await readFile(file, 'utf8')) as ManifestOrIndex) : undefined;
    } catch {
      return undefined;
    }
  };
  const manifest = await read(manifestDigest);
  if (!manifest?.config || manifest.manifests || INDEX_TYPES.has(manifest.mediaType ?? '')) return undefined;
  return configDiffIds(await read(manifest.config.digest));
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
