// Podman's image list read from containers/storage's own files, where they are on this machine and
// readable (the action runs as root on the service's host): what Podman's Docker-compatible
// `GET /images/json?all=1` answers, without its cost. Podman 4.3 builds its layer tree again for every
// image it lists (libimage's Parent and IsDangling), 15 s at 500 images where the files take 0.1 s.
// Every field is derived as Podman derives it (podman v4.3.1 and v5.8.2, pkg/domain/infra/abi/
// images_list.go and containers/common libimage); anything this reader does not know how to derive
// exactly makes it give up, and the API is asked instead.

import { join } from 'node:path';
import {
  readCappedSync,
  readPodmanList,
  STORE_LIMITS,
  type StoredImage,
  type StoreReads,
} from './layerstore';

/** One entry of the image list, as the Docker-compatible list gives it. */
export interface PodmanSummary {
  Id: string;
  ParentId: string;
  RepoTags: string[];
  RepoDigests: string[];
  Created: number;
  Size: number;
  Labels: Record<string, string> | null;
}

/** The image list and each image's layers (diff IDs and sizes, as readPodmanStore gives them), by ID. */
export interface PodmanImages {
  summaries: PodmanSummary[];
  stored: Map<string, StoredImage>;
  /** How many image records images.json holds (manifest lists too): what Podman's `/info` counts. */
  records: number;
}

interface ImageRecord {
  id?: unknown;
  digest?: unknown;
  digests?: unknown;
  names?: unknown;
  layer?: unknown;
  'mapped-top-layers'?: unknown;
  'big-data-names'?: unknown;
  'big-data-sizes'?: unknown;
  created?: unknown;
}

interface LayerRecord {
  id?: unknown;
  parent?: unknown;
  'diff-digest'?: unknown;
  'diff-size'?: unknown;
}

/** What libimage's parent check reads from an image's config (its OCI form). */
interface ConfigFacts {
  diffIds: string[];
  history: HistoryEntry[];
  labels: Record<string, string> | null;
}

interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** An image record checked, with what the list needs of it. */
interface Image {
  hex: string;
  topLayer: string;
  names: string[];
  digests: string[];
  createdS: number;
  bigDataBytes: number;
  /** A manifest list (`podman manifest create`): the compatible list leaves those out. */
  manifestList: boolean;
  config?: ConfigFacts;
}

class Unknown extends Error {}

/** Stops the read: the files hold something this reader does not derive exactly (the API is asked). */
function unknown(what: string): never {
  throw new Unknown(what);
}

const HEX = /^[0-9a-f]{64}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const isString = (v: unknown): v is string => typeof v === 'string';
const strings = (v: unknown): string[] =>
  v === undefined || v === null ? [] : Array.isArray(v) && v.every(isString) ? v : unknown('a list');

/**
 * The image list from `<graph root>/<driver>-images/images.json`, `<driver>-layers/layers.json` and each
 * image's config and (for an image without layers) manifest; undefined where any of it is unreadable or
 * holds what this reader does not derive (an image removed meanwhile, a layer without a recorded size,
 * ID-mapped layers, a name that is not fully qualified): the caller then asks the API.
 */
export async function readPodmanImages(
  rootDir: string,
  driver: string,
  reads?: StoreReads,
): Promise<PodmanImages | undefined> {
  if (!rootDir || !/^[\w.-]+$/.test(driver)) return undefined;
  const imagesDir = join(rootDir, `${driver}-images`);
  const records = await readPodmanList<ImageRecord>(imagesDir, 'images.json', reads);
  const layerRecords =
    records && (await readPodmanList<LayerRecord>(join(rootDir, `${driver}-layers`), 'layers.json', reads));
  if (!records || !layerRecords) return undefined;
  try {
    const layers = layerIndex(layerRecords);
    const images = records.map((r) => readImage(imagesDir, r, reads));
    return { ...listOf(images, layers), records: records.length };
  } catch (error) {
    if (error instanceof Unknown) return undefined;
    throw error;
  }
}

interface Layer {
  parent: string;
  diffId: string;
  size: number;
}

function layerIndex(records: LayerRecord[]): Map<string, Layer> {
  const layers = new Map<string, Layer>();
  for (const r of records) {
    if (!isString(r?.id)) unknown('a layer without an ID');
    const diffId = r['diff-digest'];
    const size = r['diff-size'];
    // A layer without a recorded digest is sized by a walk of its files (containers/storage ImageSize);
    // container layers have none and no image names them, so only an image's chain is checked below.
    layers.set(r.id, {
      parent: isString(r.parent) ? r.parent : '',
      diffId: isString(diffId) && DIGEST.test(diffId) ? diffId : '',
      size: Number.isSafeInteger(size) && (size as number) >= 0 ? (size as number) : -1,
    });
  }
  return layers;
}

function readImage(dir: string, r: ImageRecord, reads?: StoreReads): Image {
  if (!isString(r?.id) || !HEX.test(r.id)) unknown('an image ID');
  if (r['mapped-top-layers'] !== undefined && strings(r['mapped-top-layers']).length > 0) {
    unknown('ID-mapped layers');
  }
  const topLayer =
    r.layer === undefined || r.layer === '' ? '' : isString(r.layer) ? r.layer : unknown('a layer');
  const names = strings(r.names);
  const digests = [...strings(r.digests), ...(isString(r.digest) && r.digest ? [r.digest] : [])];
  if (digests.some((d) => !DIGEST.test(d))) unknown('a digest');
  if (reads && reads.timeLeft() <= 0) unknown('the time limit');
  const bigData = strings(r['big-data-names']);
  const sizes = (r['big-data-sizes'] ?? {}) as Record<string, unknown>;
  const bigDataBytes = bigData.reduce((total, name) => {
    const size = sizes[name];
    return Number.isSafeInteger(size) && (size as number) >= 0 ? total + (size as number) : unknown('a size');
  }, 0);
  const createdS = unixSeconds(isString(r.created) ? r.created : unknown('a creation time'));
  const manifestList = !topLayer && isIndex(readBigData(dir, r.id, 'manifest', reads));
  const image: Image = { hex: r.id, topLayer, names, digests, createdS, bigDataBytes, manifestList };
  if (manifestList) return image;
  const config = readBigData(dir, r.id, `sha256:${r.id}`, reads);
  return { ...image, config: config === undefined ? unknown('a config') : configFacts(config) };
}

/**
 * One of an image's big-data items, parsed; undefined when it has none of that name. Read synchronously,
 * as the classic store's small files are: one or two files of a few KiB per image, thousands of them on a
 * busy host, which read all at once would also hold thousands of descriptors open.
 */
function readBigData(dir: string, hex: string, key: string, reads?: StoreReads): unknown {
  const read = readCappedSync(join(dir, hex, bigDataFileName(key)), STORE_LIMITS.documentBytes, reads);
  if (!read || 'over' in read) return undefined;
  try {
    return JSON.parse(read.data.toString('utf8'));
  } catch {
    return unknown('a document');
  }
}

/**
 * The file name containers/storage gives a big-data item (makeBigDataBaseName): the key itself when it is
 * only lower-case letters, digits and dots, else `=` and the key in base64.
 */
export function bigDataFileName(key: string): string {
  return /^[a-z0-9.]*$/.test(key) ? key : `=${Buffer.from(key).toString('base64')}`;
}

const INDEX_TYPES = new Set([
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
]);

/** A manifest that is a list or index (containers/image's GuessMIMEType and MIMETypeIsMultiImage). */
function isIndex(manifest: unknown): boolean {
  const doc = manifest as { mediaType?: unknown; manifests?: unknown; layers?: unknown } | undefined;
  if (!doc || typeof doc !== 'object') return false;
  if (isString(doc.mediaType) && doc.mediaType) return INDEX_TYPES.has(doc.mediaType);
  return Array.isArray(doc.manifests) && doc.layers === undefined;
}

function configFacts(doc: unknown): ConfigFacts {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) unknown('a config');
  const config = doc as {
    rootfs?: { diff_ids?: unknown };
    history?: unknown;
    config?: { Labels?: unknown } | null;
  };
  const diffIds = strings(config?.rootfs?.diff_ids);
  const history = config.history === undefined || config.history === null ? [] : config.history;
  if (!Array.isArray(history) || history.some((h) => !h || typeof h !== 'object')) unknown('a history');
  const labels = config.config?.Labels ?? null;
  if (labels !== null && (typeof labels !== 'object' || Object.values(labels).some((v) => !isString(v)))) {
    unknown('labels');
  }
  return { diffIds, history: history as HistoryEntry[], labels: labels as Record<string, string> | null };
}

/** Go's `time.Time.Unix()` of an RFC 3339 time: whole seconds, rounded down. */
export function unixSeconds(text: string): number {
  const ms = Date.parse(text.replace(/\.\d+/, ''));
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : unknown('a time');
}

/** An RFC 3339 time as an instant to the nanosecond, to compare two (Go's `Time.Equal`). */
function instant(text: string): string {
  const fraction = /\.(\d+)/.exec(text)?.[1] ?? '';
  const ms = Date.parse(text.replace(/\.\d+/, ''));
  return Number.isFinite(ms) ? `${ms / 1000}.${fraction.padEnd(9, '0').slice(0, 9)}` : text;
}

/** libimage's historiesMatch: how many leading entries of two histories are the same. */
function historiesMatch(a: HistoryEntry[], b: HistoryEntry[]): number {
  let i = 0;
  for (; i < a.length && i < b.length; i++) {
    const x = a[i];
    const y = b[i];
    if (!x.created !== !y.created) return i;
    if (x.created && y.created && instant(x.created) !== instant(y.created)) return i;
    if ((x.created_by ?? '') !== (y.created_by ?? '')) return i;
    if ((x.author ?? '') !== (y.author ?? '')) return i;
    if ((x.comment ?? '') !== (y.comment ?? '')) return i;
    if (!!x.empty_layer !== !!y.empty_layer) return i;
  }
  return i;
}

/**
 * libimage's areParentAndChild: the child has all the parent's layers, in order, and its history is the
 * parent's plus one entry.
 */
function areParentAndChild(parent: ConfigFacts, child: ConfigFacts): boolean {
  if (parent.diffIds.length > child.diffIds.length) return false;
  if (parent.diffIds.some((id, i) => child.diffIds[i] !== id)) return false;
  if (parent.history.length + 1 !== child.history.length) return false;
  return historiesMatch(parent.history, child.history) === parent.history.length;
}

/**
 * The repository part of a stored name (`localhost/app:v1`, `docker.io/library/alpine@sha256:…`): the
 * name less its tag and digest, as reference.TrimNamed gives it. Podman stores names fully qualified;
 * any other name stops the read (its normalised form is not derived here).
 */
function repositoryOf(name: string): string {
  const withoutDigest = name.split('@')[0];
  const slash = withoutDigest.indexOf('/');
  const domain = slash > 0 ? withoutDigest.slice(0, slash) : '';
  if (!/[.:]/.test(domain) && domain !== 'localhost') unknown('a short name');
  if (/[A-Z]/.test(withoutDigest.slice(slash))) unknown('a name');
  const colon = withoutDigest.lastIndexOf(':');
  return colon > withoutDigest.lastIndexOf('/') ? withoutDigest.slice(0, colon) : withoutDigest;
}

/** libimage's RepoDigests: each name's repository with each of the image's digests, once each. */
function repoDigests(image: Image): string[] {
  const out = new Set<string>();
  for (const name of image.names) {
    for (const digest of image.digests) out.add(`${repositoryOf(name)}@${digest}`);
  }
  return [...out];
}

function listOf(images: Image[], layers: Map<string, Layer>): Omit<PodmanImages, 'records'> {
  // libimage's layer tree: the images on each (top) layer, in the store's order, and those without one.
  const onLayer = new Map<string, Image[]>();
  const empty: Image[] = [];
  for (const image of images) {
    if (!image.topLayer) empty.push(image);
    else onLayer.set(image.topLayer, [...(onLayer.get(image.topLayer) ?? []), image]);
  }
  const summaries: PodmanSummary[] = [];
  const stored = new Map<string, StoredImage>();
  for (const image of images) {
    if (image.manifestList) continue;
    const chain = chainOf(image, layers);
    const id = `sha256:${image.hex}`;
    summaries.push({
      Id: id,
      ParentId: parentOf(image, layers, onLayer, empty),
      RepoTags: image.names,
      RepoDigests: repoDigests(image),
      Created: image.createdS,
      Size: chain.reduce((total, layer) => total + layer.size, 0) + image.bigDataBytes,
      Labels: image.config!.labels,
    });
    stored.set(id, {
      layers: [...chain].reverse().map((l) => l.diffId),
      sizes: [...chain].reverse().map((l) => l.size),
      lastTagMs: 0,
    });
  }
  return { summaries, stored };
}

/** The image's layers from the top down; every one recorded with its digest and size. */
function chainOf(image: Image, layers: Map<string, Layer>): Layer[] {
  const chain: Layer[] = [];
  for (let id = image.topLayer; id;) {
    const layer = layers.get(id) ?? unknown('a layer removed meanwhile');
    if (!layer.diffId || layer.size < 0 || chain.length > 1000) unknown('a layer without its size');
    chain.push(layer);
    id = layer.parent;
  }
  return chain;
}

/**
 * libimage's layerTree.parent: among the images on the same top layer, then those on its parent layer
 * (or, for an image without layers, the others without), the first whose config the image's extends by
 * one history entry.
 */
function parentOf(
  image: Image,
  layers: Map<string, Layer>,
  onLayer: Map<string, Image[]>,
  empty: Image[],
): string {
  const parentLayer = image.topLayer ? layers.get(image.topLayer)?.parent : undefined;
  const candidates = image.topLayer
    ? [...(onLayer.get(image.topLayer) ?? []), ...(parentLayer ? (onLayer.get(parentLayer) ?? []) : [])]
    : empty;
  const parent = candidates.find(
    (c) => c !== image && !c.manifestList && areParentAndChild(c.config!, image.config!),
  );
  // Podman's compatible list gives a parent's ID without the `sha256:` its images' own IDs carry.
  return parent ? parent.hex : '';
}
