// The layer graph: exact bytes a removal frees.
// A layer's identity in storage is its chain (the diff IDs below it and itself), so two images share
// a layer only when they share the whole prefix up to it. Bytes freed by removing a set of images are
// the sizes of the chains that no image left behind still has.

import type { ImageInfo } from './types';

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
 * Bytes freed when `removed` images go and `remaining` images stay. Containers keep their image,
 * so their layers are covered by `remaining`.
 */
export function bytesFreed(removed: ImageInfo[], remaining: ImageInfo[]): number {
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
