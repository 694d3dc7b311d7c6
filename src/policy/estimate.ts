// The layer graph: exact bytes a removal frees.
// A layer's identity in storage is its chain (the diff IDs below it and itself), so two images share
// a layer only when they share the whole prefix up to it. Bytes freed by removing a set of images are
// the sizes of the chains that no image left behind still has.

import type { EngineInfo, EstimateMethod, ImageInfo, ImageStore } from '../types';
import { sum, sumOf } from '../collections';

/** Chain keys of an image, bottom layer first: key i identifies layers[0..i]. */
export function chainKeys(image: Pick<ImageInfo, 'layers'>): string[] {
  const keys: string[] = [];
  let key = '';
  for (const diffId of image.layers) {
    key = key === '' ? diffId : `${key}|${diffId}`;
    keys.push(key);
  }
  return keys;
}

/**
 * Bytes freed when `removed` images go and `remaining` images stay: the layer chains and the other stored
 * objects (content-store blobs, metadata) that no remaining image references. Containers keep their
 * image, so their layers are covered by `remaining`.
 */
export function bytesFreed(removed: ImageInfo[], remaining: ImageInfo[]): number {
  return layerBytesFreed(removed, remaining) + blobBytesFreed(removed, remaining);
}

/**
 * Each image's unique bytes: its layer chains and other stored objects that no other image references,
 * what removing that image alone frees (`bytesFreed([image], the others)` for every image at once).
 * Bytes two images share count in neither: they go only with the last image that has them.
 */
export function uniqueBytes(images: ImageInfo[]): Map<string, number> {
  const users = new Map<string, number>();
  const count = (key: string) => users.set(key, (users.get(key) ?? 0) + 1);
  for (const image of images) {
    for (const key of chainKeys(image)) count(key);
    for (const key of new Set((image.blobs ?? []).map((blob) => `blob:${blob.key}`))) count(key);
  }
  const unique = new Map<string, number>();
  for (const image of images) {
    let bytes = 0;
    chainKeys(image).forEach((key, i) => {
      if (users.get(key) === 1) bytes += image.layerSizes[i] ?? 0;
    });
    const blobs = new Map((image.blobs ?? []).map((blob) => [blob.key, blob.size]));
    for (const [key, size] of blobs) if (users.get(`blob:${key}`) === 1) bytes += size;
    unique.set(image.id, bytes);
  }
  return unique;
}

/**
 * The unique bytes of each group of images taken together (an image with the untagged parents that go
 * with it): the layer chains and stored objects that only members of the group reference. Groups must
 * not overlap; `all` is every image.
 */
export function groupUniqueBytes(all: ImageInfo[], groups: ImageInfo[][]): number[] {
  const users = new Map<string, number>();
  const count = (key: string) => users.set(key, (users.get(key) ?? 0) + 1);
  const keysOf = (image: ImageInfo) => [
    ...chainKeys(image).map((key, i) => [key, image.layerSizes[i] ?? 0] as const),
    ...new Map((image.blobs ?? []).map((blob) => [`blob:${blob.key}`, blob.size])),
  ];
  for (const image of all) for (const [key] of keysOf(image)) count(key);
  return groups.map((group) => {
    const within = new Map<string, { members: number; size: number }>();
    for (const image of group) {
      for (const [key, size] of keysOf(image))
        within.set(key, { members: (within.get(key)?.members ?? 0) + 1, size });
    }
    let bytes = 0;
    for (const [key, { members, size }] of within) if (users.get(key) === members) bytes += size;
    return bytes;
  });
}

/** The stored objects besides layers (`ImageInfo.blobs`) that only removed images reference. */
export function blobBytesFreed(removed: ImageInfo[], remaining: ImageInfo[]): number {
  const kept = new Set<string>();
  for (const image of remaining) for (const blob of image.blobs ?? []) kept.add(blob.key);
  const freed = new Map<string, number>();
  for (const image of removed) {
    for (const blob of image.blobs ?? []) if (!kept.has(blob.key)) freed.set(blob.key, blob.size);
  }
  let total = 0;
  for (const size of freed.values()) total += size;
  return total;
}

/** Bytes of the layer chains (unpacked layers, snapshots) that no remaining image has. */
export function layerBytesFreed(removed: ImageInfo[], remaining: ImageInfo[]): number {
  const kept = new Set<string>();
  for (const image of remaining) for (const key of chainKeys(image)) kept.add(key);
  const freed = new Map<string, number>();
  for (const image of removed) {
    chainKeys(image).forEach((key, i) => {
      if (!kept.has(key)) freed.set(key, image.layerSizes[i] ?? 0);
    });
  }
  let total = 0;
  for (const size of freed.values()) total += size;
  return total;
}

/** SHA-256 of an empty layer tar (1024 zero bytes): the diff ID of every layer that adds no files. */
export const EMPTY_LAYER = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

/**
 * Sizes of an image's layers from its history. The API's history lists every build step newest first,
 * with metadata-only steps at size 0, and does not say which steps made layers. Non-zero steps always
 * made one; zero-size steps are ambiguous, so the empty-layer diff ID decides where it can, and
 * otherwise the mapping is marked inexact.
 */
export function layerSizesFromHistory(
  layers: string[],
  historySizesNewestFirst: number[],
): { sizes: number[]; exact: boolean } {
  const steps = [...historySizesNewestFirst].reverse();
  const nonZero = steps.filter((s) => s > 0);
  const contentLayers = layers.filter((l) => l !== EMPTY_LAYER).length;
  if (nonZero.length === contentLayers) {
    // Every layer with content matches one non-zero step, in order.
    let next = 0;
    const sizes = layers.map((l) => (l === EMPTY_LAYER ? 0 : (nonZero[next++] ?? 0)));
    return { sizes, exact: true };
  }
  if (steps.length === layers.length) return { sizes: steps, exact: true };
  // Some content layers hold only empty files or directories (size 0): place the non-zero steps
  // in order and accept that the position of zero-size layers may be off.
  const sizes = new Array<number>(layers.length).fill(0);
  let next = 0;
  for (let i = 0; i < layers.length && next < nonZero.length; i++) {
    if (layers[i] !== EMPTY_LAYER) sizes[i] = nonZero[next++];
  }
  return { sizes, exact: nonZero.length === 0 };
}

/** What `/system/df` says of one image: all its bytes, and those it shares with other listed images. */
export interface DfImage {
  size: number;
  shared: number;
}

interface Sizable {
  id: string;
  layers: string[];
  size: number;
}

/**
 * Which images need their history fetched to size every layer, and how to size the rest without it.
 * An image's unique tail (the layers no other image has) totals `Size - SharedSize` from `/system/df`, so
 * it needs no call when df's view of sharing matches ours; the shared layers above it are sized from the
 * history of one image per deepest shared layer. Every result is checked against the image's own size.
 */
export function planLayerSizing(images: Sizable[], df: Map<string, DfImage>, sizesAreLayerTotals = true) {
  const refs = new Map<string, number>();
  const dfRefs = new Map<string, number>();
  const keysOf = new Map(images.map((image) => [image.id, chainKeys(image)]));
  for (const image of images) {
    for (const key of keysOf.get(image.id)!) {
      refs.set(key, (refs.get(key) ?? 0) + 1);
      if (df.has(image.id)) dfRefs.set(key, (dfRefs.get(key) ?? 0) + 1);
    }
  }
  const tailStart = new Map<string, number>();
  const history = new Set<string>();
  for (const image of images) {
    const keys = keysOf.get(image.id)!;
    let k = keys.length;
    while (k > 0 && refs.get(keys[k - 1]) === 1) k--;
    const d = df.get(image.id);
    const consistent =
      d !== undefined &&
      d.shared >= 0 &&
      d.size === image.size &&
      keys.slice(0, k).every((key) => (dfRefs.get(key) ?? 0) >= 2) &&
      keys.slice(k).every((key) => dfRefs.get(key) === 1);
    if (consistent) tailStart.set(image.id, k);
    else history.add(image.id);
  }
  const covered = new Set<string>();
  for (const id of history) for (const key of keysOf.get(id)!) covered.add(key);
  for (const image of [...images].sort((a, b) => b.layers.length - a.layers.length)) {
    const k = tailStart.get(image.id);
    const keys = keysOf.get(image.id)!;
    // The deepest shared layer is just above the unique tail (the last layer when nothing is unique;
    // none when the whole chain is the image's own).
    const deepest = k === undefined ? -1 : k - 1;
    if (deepest < 0 || covered.has(keys[deepest])) continue;
    history.add(image.id);
    tailStart.delete(image.id);
    for (const key of keys) covered.add(key);
  }

  /** Layer sizes of every image, given the histories (step sizes, newest first) of `history`. */
  const resolve = (histories: Map<string, number[]>): Map<string, { sizes: number[]; exact: boolean }> => {
    const result = new Map<string, { sizes: number[]; exact: boolean }>();
    const known = new Map<string, { size: number; exact: boolean }>();
    for (const image of images) {
      const steps = histories.get(image.id);
      if (!steps) continue;
      const sized = layerSizesFromHistory(image.layers, steps);
      // Where an image's Size is its layers' total (the classic store), it checks the history's sizes.
      if (sizesAreLayerTotals && sum(sized.sizes) !== image.size) sized.exact = false;
      keysOf.get(image.id)!.forEach((key, i) => known.set(key, { size: sized.sizes[i], exact: sized.exact }));
      result.set(image.id, sized);
    }
    for (const image of images) {
      if (result.has(image.id)) continue;
      const keys = keysOf.get(image.id)!;
      const k = tailStart.get(image.id) ?? keys.length;
      const d = df.get(image.id);
      const sizes = keys.map((key, i) => (i < k ? (known.get(key)?.size ?? 0) : 0));
      if (k < keys.length && d) sizes[k] = d.size - d.shared;
      const exact =
        keys.slice(0, k).every((key) => known.get(key)?.exact === true) && sum(sizes) === image.size;
      result.set(image.id, { sizes, exact });
    }
    return result;
  };
  return { history: [...history], resolve };
}

/** Media types of a single image manifest: an image whose target is one holds its manifest, config and layers. */
const MANIFEST_TYPES = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
]);

/**
 * What uniqueContent needs of an image: its target's media type and size (API 1.46+) and, for an index,
 * how many of its image manifests have content here.
 */
export type ContentSizing = Pick<ImageInfo, 'id' | 'layers' | 'layerSizes' | 'layerSizesExact' | 'size'> & {
  targetType?: string;
  targetSize?: number;
  presentManifests?: number;
};

/**
 * The content-store bytes each image alone references (`own`) and those it shares with another listed
 * image (`shared`), from `/system/df`'s Size and SharedSize where the latter counts content (see
 * sharedSizeCountsContent). Size is an image's content plus its snapshots; SharedSize the snapshots and the
 * blobs another listed image also has: Size − SharedSize − the snapshots only it has is the content only it
 * has. An index's own blob is not in Size (measured on 29.7.2): it is added, an index being one image's
 * target. Only where that holds: df lists exactly these images (its sharing is among them), the target is
 * one manifest or an index with one platform here (another's snapshots would be in Size), the layer sizes
 * are exact, and no diff ID repeats (Size counts a repeated blob twice, SharedSize once). A result outside
 * 0 … the image's content is dropped.
 */
export function uniqueContent(
  images: ContentSizing[],
  df: Map<string, DfImage>,
): Map<string, { own: number; shared: number }> {
  const result = new Map<string, { own: number; shared: number }>();
  if (df.size !== images.length || !images.every((image) => df.has(image.id))) return result;
  const refs = new Map<string, number>();
  for (const image of images) for (const key of chainKeys(image)) refs.set(key, (refs.get(key) ?? 0) + 1);
  for (const image of images) {
    const d = df.get(image.id)!;
    const index = indexBlob(image);
    const sound =
      d.shared >= 0 &&
      d.size === image.size &&
      (MANIFEST_TYPES.has(image.targetType ?? '') || index !== undefined) &&
      image.layerSizesExact &&
      new Set(image.layers).size === image.layers.length;
    if (!sound) continue;
    const keys = chainKeys(image);
    const ownSnapshots = image.layerSizes.reduce((n, size, i) => n + (refs.get(keys[i]) === 1 ? size : 0), 0);
    const content = image.size - sum(image.layerSizes);
    const own = d.size - d.shared - ownSnapshots;
    if (own >= 0 && own <= content) result.set(image.id, { own: own + (index ?? 0), shared: content - own });
  }
  return result;
}

/** The size of an image's index blob, where its target is an index with one platform here. */
function indexBlob(image: ContentSizing): number | undefined {
  const single = !MANIFEST_TYPES.has(image.targetType ?? '') && image.presentManifests === 1;
  return single && image.targetSize !== undefined && image.targetSize >= 0 ? image.targetSize : undefined;
}

/**
 * Whether the daemon's sharing is among the layer chains the inventory sees. An index target whose other
 * platforms have content here adds their chains to the daemon's count, which the inspect does not show:
 * another image's chain it also has would be shared to the daemon, its own to us, and that image's unique
 * content would come out too small (still a low bound, not exact). `presentManifests`: for an index target,
 * how many of its image manifests have content here (undefined: unknown).
 */
export function chainsAllSeen(images: { targetType?: string; presentManifests?: number }[]): boolean {
  return images.every(
    (image) => MANIFEST_TYPES.has(image.targetType ?? '') || (image.presentManifests ?? 2) <= 1,
  );
}

/**
 * Whether the image list's SharedSize counts the content-store blobs an image shares, not only its
 * snapshots: Docker 29.5 on (moby 9f19521146), on the containerd store. 26.1's and 28.5's count the
 * snapshots alone (measured: SharedSize equal to the shared snapshots' bytes on both).
 */
export function sharedSizeCountsContent(
  engine: Pick<EngineInfo, 'name' | 'version' | 'imageStore'>,
): boolean {
  if (engine.imageStore !== 'containerd' || engine.name !== 'docker') return false;
  const [major, minor] = (/^(\d+)\.(\d+)\./.exec(engine.version) ?? []).slice(1).map(Number);
  return major > 29 || (major === 29 && minor >= 5);
}

/**
 * Diff IDs that two or more removed images have and no remaining image does. A diff ID is one layer blob
 * (normally: the same layer compressed two ways is two), so their blobs go with the removal while each
 * image's unique content leaves them out: the content count cannot be exact then.
 */
export function sharedAmongRemovedOnly(gone: ImageInfo[], remaining: ImageInfo[]): string[] {
  const kept = new Set(remaining.flatMap((image) => image.layers));
  const holders = new Map<string, number>();
  for (const image of gone) {
    for (const diffId of new Set(image.layers)) holders.set(diffId, (holders.get(diffId) ?? 0) + 1);
  }
  return [...holders].filter(([diffId, n]) => n >= 2 && !kept.has(diffId)).map(([diffId]) => diffId);
}

/**
 * Whether the content the removed images free is exactly their unique content (in `blobs`): each one's
 * content is sized from the API's shared sizes, each has a layer (two layerless images could share a
 * config unseen), and no layer blob is shared among removed images only.
 */
function contentExactFromApi(gone: ImageInfo[], remaining: ImageInfo[]): boolean {
  return (
    gone.every((image) => image.contentSharedOnly === true && image.layers.length > 0) &&
    sharedAmongRemovedOnly(gone, remaining).length === 0
  );
}

const READ_NOTE =
  'Exact: unpacked layers (snapshots) no remaining image uses, plus the content-store blobs (manifests, ' +
  'configs, layer blobs) no remaining image references, read from the content store. Removed containers ' +
  'free their writable and init snapshots, which this store counts in its layer total, as it counts the ' +
  "build cache's snapshots: the measured figure is that total's change, and build cache is estimated " +
  "from BuildKit's record sizes, which the snapshots it frees can exceed.";

const API_NOTE =
  'Exact: unpacked layers (snapshots) no remaining image uses, plus the content-store blobs each removed ' +
  'image alone references, counted from the API (its Size less its SharedSize, which counts shared blobs ' +
  'from Docker 29.5, less the snapshots only it has); the content store is not readable from here, and no ' +
  'layer is shared among removed images only (taking one blob per layer, as a pull or load stores it).';

/**
 * How the image bytes of a plan were estimated, and their bounds when the engine does not allow an exact
 * figure. `gone` are the images the plan removes, `remaining` the rest.
 */
export function estimateMethod(
  store: ImageStore,
  gone: ImageInfo[],
  remaining: ImageInfo[],
  layersExact: boolean,
): EstimateMethod {
  if (store === 'podman') {
    return {
      method: 'layer-graph+metadata',
      exact: layersExact,
      note:
        "Exact in Podman's own accounting: each layer's size as Podman records it (its uncompressed tar), " +
        "counted once, plus each image's metadata; Podman's /system/df has no layer total, so the measured " +
        'figure is the same arithmetic on what is left. The disk frees more: directories, tar-split files, ' +
        'metadata and file-system blocks, tens of KiB per removed image.',
    };
  }
  if (store === 'classic') {
    return {
      method: 'layer-graph',
      exact: layersExact,
      note: 'Exact: the bytes of every layer that no remaining image or container uses, counted once.',
    };
  }
  // Containerd store: snapshots sized exactly from the layer graph; content-store blobs read from the
  // content store when it is readable here, else counted from the API's sizes or bounded.
  if (gone.every((image) => image.contentSize === undefined)) {
    return { method: 'layer-graph+content', exact: layersExact, note: READ_NOTE };
  }
  if (contentExactFromApi(gone, remaining)) {
    return { method: 'layer-graph+content-api', exact: layersExact, note: API_NOTE };
  }
  return boundedContent(gone, remaining);
}

/** Snapshots exact; the content beyond what `blobs` counts between nothing and all of it. */
function boundedContent(gone: ImageInfo[], remaining: ImageInfo[]): EstimateMethod {
  const low = layerBytesFreed(gone, remaining) + blobBytesFreed(gone, remaining);
  const unknownContent = sumOf(gone, (image) => image.contentSize ?? 0);
  const counted = gone.some((image) => image.contentSharedOnly !== undefined);
  return {
    method: 'layer-graph+content-bounded',
    exact: false,
    low,
    high: low + unknownContent,
    note: counted
      ? 'Unpacked layers (snapshots) exact; the content store could not be read from here. The low figure ' +
        'counts the blobs each removed image alone references (from the API’s Size and SharedSize); the ' +
        'high adds every blob a removed image shares with another, which is freed only when all images ' +
        'sharing it go. The disk frees between the low and the high figure.'
      : 'Unpacked layers (snapshots) exact; the content store could not be read from here, so its blobs are ' +
        'counted as each removed image’s whole content size (an upper bound: blobs shared with other images ' +
        'are counted too). The disk frees between the low and the high figure.',
  };
}

/**
 * Whether the daemon's `LayersSize` counts every snapshot, containers' and BuildKit's too: so on Docker's
 * containerd store before 29. Docker 29's is the images' alone (measured on 29.7.2: a container's 300 KB
 * left it unchanged, 28.5's grew by SizeRw plus the init snapshot), and containers and build cache are
 * counted in their own classes, as on the classic store.
 */
export function snapshotsInLayersSize(engine: Pick<EngineInfo, 'name' | 'version' | 'imageStore'>): boolean {
  if (engine.imageStore !== 'containerd' || engine.name !== 'docker') return false;
  const major = Number(/^(\d+)\./.exec(engine.version)?.[1]);
  return !(major >= 29);
}
