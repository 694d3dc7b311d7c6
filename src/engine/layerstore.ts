// Docker's classic image store and Podman's containers/storage, read from disk where it is on this machine and readable (the action runs
// as root on the daemon's host): each image's config (its layers' diff IDs) and each layer's size, the
// figures the API's inspect and history give, without one or two requests per image. The layout is
// `<data root>/image/<storage driver>/`: `imagedb/content/sha256/<id>` holds the config,
// `imagedb/metadata/sha256/<id>/lastUpdated` the last tag time, `layerdb/sha256/<chain ID>/size` the
// layer's size (what `LayersSize`, history and `docker image ls` count).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
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
 * A small file's text, or undefined. Read synchronously: there are thousands of them of a few hundred
 * bytes each, and a hop through libuv's thread pool (4 threads) costs more than the read itself.
 */
function readSmall(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
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

function readConfigLayers(dir: string, hex: string): string[] | undefined {
  try {
    return configDiffIds(JSON.parse(readSmall(join(dir, 'imagedb/content/sha256', hex)) ?? ''));
  } catch {
    return undefined;
  }
}

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
): StoredImage | undefined {
  const hex = hexOf(imageId);
  const layers = hex && readConfigLayers(dir, hex);
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
): Promise<Map<string, StoredImage> | undefined> {
  if (!rootDir || !/^[\w.-]+$/.test(driver)) return undefined;
  let images: PodmanImageRecord[];
  let layers: PodmanLayerRecord[];
  try {
    images = JSON.parse(await readFile(join(rootDir, `${driver}-images`, 'images.json'), 'utf8'));
    layers = JSON.parse(await readFile(join(rootDir, `${driver}-layers`, 'layers.json'), 'utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(images) || !Array.isArray(layers)) return undefined;
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
