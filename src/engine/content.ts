// The containerd image store's content store, read from disk where it is on this machine and readable
// (the action runs as root on the daemon's host): each image's manifest, config and layer blobs, with
// their exact sizes. The Docker API does not list an image's blobs, only their total.

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
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

/**
 * The blobs an image references that are present in the content store, from its target (the digest of
 * its manifest or index: the `Descriptor` the API gives, which is also the image ID on Docker 28): the
 * index, each present manifest, its config and layer blobs. Undefined when the target cannot be read.
 */
export async function readImageBlobs(dir: string, target: string): Promise<Blob[] | undefined> {
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
  if (!(await visit(target, 0))) return undefined;
  return [...blobs].map(([digest, size]) => ({ key: digest, size }));
}
