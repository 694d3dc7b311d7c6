// Plain-data images and containers for unit tests of the pure core: every field a daemon would give,
// overridable, with unique IDs.
import { createHash } from 'node:crypto';
import type { ContainerInfo, ImageInfo } from '../../src/types';

export const SECOND_MS = 1000;
export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** A full sha256 hex digest of `seed`. */
export const hexOf = (seed: string | number) => createHash('sha256').update(String(seed)).digest('hex');

let images = 0;
/** An image with one own 1000-byte layer, created at `createdMs` (whole seconds, as the API gives). */
export function imageOf(repoTags: string[], createdMs: number, extra: Partial<ImageInfo> = {}): ImageInfo {
  const n = ++images;
  return {
    id: `sha256:${hexOf(`image ${n}`)}`,
    repoTags,
    repoDigests: [],
    createdMs: Math.floor(createdMs / 1000) * 1000,
    size: 1000,
    labels: {},
    parentId: '',
    layers: [`sha256:${hexOf(`layer ${n}`)}`],
    layerSizes: [1000],
    layerSizesExact: true,
    ...extra,
  };
}

let containers = 0;
/** A container of `image` in `state`, created at `createdMs`. */
export function containerOf(
  name: string,
  image: ImageInfo,
  state: string,
  createdMs: number,
  extra: Partial<ContainerInfo> = {},
): ContainerInfo {
  return {
    id: hexOf(`container ${++containers}`),
    names: [name],
    imageId: image.id,
    image: image.repoTags[0] ?? image.id,
    state,
    createdMs: Math.floor(createdMs / 1000) * 1000,
    labels: {},
    sizeRw: 0,
    networks: [],
    volumes: [],
    ...extra,
  };
}

/** An image with every field a daemon gives defaulted (no tags, no layers, created at 0); `fields` set the rest. */
export function imageInfo(fields: Partial<ImageInfo> & { id: string }): ImageInfo {
  return {
    repoTags: [],
    repoDigests: [],
    createdMs: 0,
    size: 0,
    labels: {},
    parentId: '',
    layers: [],
    layerSizes: [],
    layerSizesExact: true,
    ...fields,
  };
}

/** `layers` ([ID, bytes] from the bottom) as an image's fields: the layer IDs, their sizes and their sum. */
export function withLayers(layers: [string, number][]): Pick<ImageInfo, 'layers' | 'layerSizes' | 'size'> {
  return {
    layers: layers.map(([id]) => id),
    layerSizes: layers.map(([, size]) => size),
    size: layers.reduce((n, [, size]) => n + size, 0),
  };
}

/** A container with every field a daemon gives defaulted (no name, running, created at 0), of `fields.imageId`. */
export function containerInfo(
  fields: Partial<ContainerInfo> & { id: string; imageId: string },
): ContainerInfo {
  return {
    names: [],
    image: fields.imageId,
    state: 'running',
    createdMs: 0,
    labels: {},
    sizeRw: 0,
    networks: [],
    volumes: [],
    ...fields,
  };
}
