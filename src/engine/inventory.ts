// One inventory of the daemon: images with their layers, containers, networks, volumes, build cache, and
// Docker's own byte totals. Per image: one inspect (the diff IDs); a history (layer sizes) only where
// `/system/df` cannot size the image's layers already (see planLayerSizing).

import { statusOf, type DockerApi } from './docker';
import {
  blobBytesFreed,
  layerBytesFreed,
  layerSizesFromHistory,
  planLayerSizing,
  chainsAllSeen,
  sharedSizeCountsContent,
  snapshotsInLayersSize,
  uniqueContent,
  type DfImage,
} from '../policy/estimate';
import {
  configLayers,
  contentStoreFor,
  contentTotal,
  layersCountContent,
  readImageContent,
  contentStoreReadable,
  type ImageContent,
  referrers,
} from './content';
import {
  chainIds,
  classicStoreFor,
  readPodmanStore,
  readStoredImage,
  storeReads,
  storeWarnings,
  type StoredImage,
  type StoreReads,
} from './layerstore';
import { mapPool } from './pool';
import { readPodmanImages, type PodmanImages } from './podman-images';
import { readContainerSizes, sizedByDiff, sizesReadable, type PodmanService } from './podman-containers';
import { hostname } from 'node:os';
import { readSnapshotSizes, readTagTimes } from './containerd-db';
import type {
  Blob,
  ContainerInfo,
  EngineInfo,
  ImageInfo,
  ImageStore,
  Inventory,
  ServiceImage,
  Usage,
} from '../types';
import { messageOf } from '../errors';
import { sum, sumOf } from '../collections';

interface ApiImageSummary {
  Id: string;
  ParentId?: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Created: number;
  Size: number;
  SharedSize?: number;
  Labels?: Record<string, string> | null;
  /** The image's target (manifest or index) on the containerd store, API 1.46+. */
  Descriptor?: { digest?: string; mediaType?: string; size?: number } | null;
}

interface ApiContainerSummary {
  Id: string;
  Names?: string[] | null;
  Image: string;
  ImageID: string;
  State: string;
  Created: number;
  Labels?: Record<string, string> | null;
  SizeRw?: number;
  SizeRootFs?: number;
  HostConfig?: { NetworkMode?: string };
  NetworkSettings?: { Networks?: Record<string, { NetworkID?: string }> | null };
  Mounts?: { Type?: string; Name?: string }[] | null;
}

interface ApiNetwork {
  Id: string;
  Name: string;
  Driver: string;
  Scope: string;
  Labels?: Record<string, string> | null;
  Created: string;
}

interface ApiVolume {
  Name: string;
  Driver: string;
  Labels?: Record<string, string> | null;
  CreatedAt?: string;
  UsageData?: { Size: number; RefCount: number } | null;
}

interface ApiBuildCache {
  ID: string;
  Size: number;
  InUse: boolean;
  Shared: boolean;
  CreatedAt?: string;
  LastUsedAt?: string | null;
}

/** API 1.52 (Docker 29) per-type usage, sent beside (or, with `verbose`, instead of) the legacy fields. */
interface ApiTypeUsage {
  TotalSize?: number;
  Reclaimable?: number;
}

export interface ApiDiskUsage {
  LayersSize?: number;
  Images?: ApiImageSummary[] | null;
  Containers?: ApiContainerSummary[] | null;
  Volumes?: ApiVolume[] | null;
  BuildCache?: ApiBuildCache[] | null;
  ImageUsage?: ApiTypeUsage | null;
  ContainerUsage?: ApiTypeUsage | null;
  VolumeUsage?: ApiTypeUsage | null;
  BuildCacheUsage?: ApiTypeUsage | null;
}

interface ApiVersion {
  Version?: string;
  ApiVersion: string;
  Components?: { Name: string; Version?: string }[] | null;
}

interface ApiInfo {
  ID?: string;
  /** The daemon's host name. */
  Name?: string;
  /** How many images its store holds. */
  Images?: number;
  DockerRootDir?: string;
  /** The storage driver (`overlay2`), which names the classic store's folder below the data root. */
  Driver?: string;
  DriverStatus?: [string, string][] | null;
  /** API 1.46+: the containerd the daemon uses. */
  Containerd?: { Address?: string } | null;
  Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } | null;
}

interface ApiServiceSpec {
  TaskTemplate?: { ContainerSpec?: { Image?: string } | null } | null;
}

interface ApiService {
  ID: string;
  Spec?: ({ Name?: string } & ApiServiceSpec) | null;
  PreviousSpec?: ApiServiceSpec | null;
}

const podmanComponent = (version: ApiVersion) =>
  (version.Components ?? []).find((c) => /podman/i.test(c.Name));
const isPodman = (version: ApiVersion) => podmanComponent(version) !== undefined;

/** Engine, version, API version and image store from `/version` and `/info`. */
export function engineOf(version: ApiVersion, info: ApiInfo): EngineInfo {
  const podman = podmanComponent(version);
  const imageStore: ImageStore = podman
    ? 'podman'
    : isContainerdStore(info.DriverStatus)
      ? 'containerd'
      : 'classic';
  return {
    name: podman ? 'podman' : 'docker',
    version: podman?.Version ?? version.Version ?? 'unknown',
    apiVersion: version.ApiVersion,
    imageStore,
    // Podman's compatible /info gives a new random ID on every call: no ID at all is more honest.
    id: podman ? '' : (info.ID ?? ''),
  };
}

/** Dangling images show `<none>:<none>` (API < 1.45), `null` or `[]` depending on the daemon. */
export function realTags(tags: string[] | null | undefined): string[] {
  return (tags ?? []).filter((t) => t !== '<none>:<none>');
}

/** The containerd image store reports itself in `/info` as driver-type io.containerd.snapshotter.v1. */
export function isContainerdStore(driverStatus: [string, string][] | null | undefined): boolean {
  return (driverStatus ?? []).some(
    ([key, value]) => key === 'driver-type' && value.startsWith('io.containerd.snapshotter'),
  );
}

/** An API timestamp as epoch ms, in whole seconds like the images' and containers' `Created`; 0 when unknown. */
const msOf = (iso: string | undefined) => (iso ? Math.floor(Date.parse(iso) / 1000) * 1000 || 0 : 0);

/**
 * The daemon's per-class byte totals from one `/system/df` answer: the legacy per-object lists where the
 * daemon sends them (exact, and what every API version up to 1.52 sends), else API 1.52's per-type totals.
 */
export function usageOf(df: ApiDiskUsage): Usage {
  // A size the daemon could not compute is -1: counted as nothing.
  const positive = (values: number[]) => sumOf(values, (v) => (v > 0 ? v : 0));
  const total = (usage: ApiTypeUsage | null | undefined) => Math.max(0, usage?.TotalSize ?? 0);
  return {
    layers: df.LayersSize ?? total(df.ImageUsage),
    containers: df.Containers ? positive(df.Containers.map((c) => c.SizeRw ?? 0)) : total(df.ContainerUsage),
    volumes: df.Volumes ? positive(df.Volumes.map((v) => v.UsageData?.Size ?? 0)) : total(df.VolumeUsage),
    buildCache: df.BuildCache
      ? positive(df.BuildCache.filter((r) => !r.Shared).map((r) => r.Size))
      : total(df.BuildCacheUsage),
  };
}

/**
 * What removing a container frees, as the daemon's usage counts it. Where `LayersSize` counts snapshots
 * (see snapshotsInLayersSize) its writable snapshot and its init snapshot (/etc/hosts and the like) are
 * both in it, while `SizeRw` is only the first: there the bytes are `SizeRootFs` less the image's
 * unpacked layers. Elsewhere `SizeRw`.
 */
function containerBytes(
  c: ApiContainerSummary,
  snapshotsCounted: boolean,
  sizeRw: Map<string, number>,
  sizeRootFs: Map<string, number>,
  unpacked: Map<string, number>,
): number {
  const rw = sizeRw.get(c.Id) ?? 0;
  const rootFs = sizeRootFs.get(c.Id) ?? 0;
  const image = unpacked.get(c.ImageID);
  if (!snapshotsCounted || image === undefined || rootFs < image + rw) return rw;
  return rootFs - image;
}

/**
 * The per-class totals a store's own accounting gives: on Podman the image bytes are the layer graph's
 * (its df has no layer total); on the containerd store before Docker 29 the snapshots of containers and
 * of BuildKit's cache are already in `LayersSize` (see snapshotsInLayersSize), so those classes add
 * nothing of their own to the measured figure: counting them again would count them twice.
 */
export async function storeUsage(
  engine: Pick<EngineInfo, 'name' | 'version' | 'imageStore'>,
  usage: Usage,
  images: ImageInfo[],
  contentOutsideLayers?: string,
): Promise<Usage> {
  if (engine.imageStore === 'podman') return { ...usage, layers: imageGraphBytes(images) };
  if (engine.imageStore === 'containerd') {
    const content = contentOutsideLayers ? await contentTotal(contentOutsideLayers) : 0;
    const layers = usage.layers + content;
    return snapshotsInLayersSize(engine)
      ? { ...usage, layers, containers: 0, buildCache: 0 }
      : { ...usage, layers };
  }
  return usage;
}

/**
 * The images' bytes as their layer graph gives them: each layer chain once plus each blob once (Podman's
 * metadata, the containerd store's content). Podman's `/system/df` has no layer total (`LayersSize` 0):
 * its image bytes are these, over the images present; on Docker 29's containerd store they are what
 * LayersSize counts (see imagePartComputable).
 */
export function imageGraphBytes(images: ImageInfo[]): number {
  return layerBytesFreed(images, []) + blobBytesFreed(images, []);
}

/**
 * An image deleted since it was listed: 404, or Podman's HTTP 500 "layer not known" / "image not known"
 * when another client removes it while it is being read.
 */
export function isGone(error: unknown): boolean {
  const status = (error as { statusCode?: number }).statusCode;
  return status === 404 || (status === 500 && /\b(layer|image) not known\b/i.test(messageOf(error)));
}

/** `/system/df`'s HTTP 500 for an image or layer removed while it listed them (another client's prune). */
function removedMidList(error: unknown): boolean {
  return (
    statusOf(error) === 500 &&
    (isGone(error) || /\b(layer|image) \S+ was not found\b/i.test(messageOf(error)))
  );
}

/** How many times a listing that an image removed mid-list broke is asked for, in all. */
export const LIST_ATTEMPTS = 3;

/**
 * Every image, intermediate ones too. Podman 4.3 fails the whole list with HTTP 500 ("retrieving
 * parent of image …: image not known", "layer not known") when another client removes an image while it
 * lists: on a shared host that is someone else's prune, not a fault of the daemon, so the list is asked
 * again, up to LIST_ATTEMPTS times in all.
 */
export async function listImages(docker: DockerApi): Promise<ApiImageSummary[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await docker.request<ApiImageSummary[]>('GET', '/images/json', { all: true });
    } catch (error) {
      if (attempt >= LIST_ATTEMPTS || !removedMidList(error)) throw error;
    }
  }
}

/** A time from the API, epoch ms; 0 for none (Go's zero time `0001-01-01T00:00:00Z`, or unparsable). */
export function apiTimeMs(iso: string | undefined | null): number {
  const ms = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

/** One image's layers as read from the store or the API (layer sizes where the store gives them). */
interface ImageRead {
  layers: string[];
  lastTagMs: number;
  sizes?: number[];
  fromStore: boolean;
}

/** The image's target in the content store: its manifest or index (API 1.46+), else its ID. */
const target = (summary: ApiImageSummary) => summary.Descriptor?.digest ?? summary.Id;

/**
 * Swarm services' images, current and previous spec, where the daemon is a swarm manager: a service's
 * image is needed while its tasks are between restarts or it is scaled to zero, and its previous spec's
 * is what a rollback runs. Undefined where the daemon is not a manager (a worker cannot list services).
 */
async function serviceImages(docker: DockerApi, info: ApiInfo): Promise<ServiceImage[] | undefined> {
  if (info.Swarm?.LocalNodeState !== 'active' || !info.Swarm.ControlAvailable) return undefined;
  const services = await docker.request<ApiService[]>('GET', '/services');
  return services.flatMap((s) => {
    const name = s.Spec?.Name || s.ID;
    return [
      { service: name, image: s.Spec?.TaskTemplate?.ContainerSpec?.Image ?? '', previous: false },
      { service: name, image: s.PreviousSpec?.TaskTemplate?.ContainerSpec?.Image ?? '', previous: true },
    ].filter((ref) => ref.image !== '');
  });
}

/**
 * `tagTimes`: also read when each image was last tagged (its arrival, for the grace period, keep-recent and
 * a budget's order; on the containerd store an inspect per image where its metadata is not readable here).
 * `containerTimes`: when each container that is not running last started and finished (the grace period,
 * a budget's order).
 */
export async function takeInventory(
  docker: DockerApi,
  concurrency: number,
  opts: { tagTimes?: boolean; containerTimes?: boolean } = {},
): Promise<Inventory> {
  const takenAt = Date.now();
  const { phases, done } = phaseClock();
  // Reads from the image store on disk: bounded, and stopped at the run's time limit.
  const reader: Reader = { docker, concurrency, reads: storeReads(() => docker.timeLeft()), done };
  const {
    version,
    info,
    summaries,
    containers,
    networks,
    df: dfRead,
    inspected,
    services,
    store,
    podmanFiles,
    podmanContainerFiles,
  } = await readDaemon(reader, opts.tagTimes);
  const present = presentImages(summaries, inspected);
  const engine: EngineInfo = { ...engineOf(version, info), layersReadFrom: layersReadFrom(present) };
  const imageStore = engine.imageStore;
  const { contentDir, contents, sized } = await readImageBytes(
    reader,
    present,
    imageStore,
    info,
    store,
    dfRead,
  );
  const times = opts.containerTimes
    ? await readContainerTimes(reader, containers)
    : new Map<string, ContainerTimes>();
  const listed = present.map(({ summary, layers, lastTagMs }) =>
    toImageInfo(summary, imageStore, {
      layers,
      lastTagMs,
      sized: sized.get(summary.Id),
      blobs: contents.get(summary.Id)?.blobs,
    }),
  );
  const df = await withImagePart(reader, dfRead, listed, contents);
  const targets = await targetsOf(
    docker,
    engine,
    listed,
    present.map((p) => p.summary),
  );
  const images = withUniqueContent(listed, engine, df, targets);
  // Where LayersSize leaves the content store out (Docker before 28), its bytes are read from disk.
  const outside = contentDir && !layersCountContent(engine.version) ? contentDir : undefined;
  const usage = await storeUsage(engine, usageOf(df), images, outside);
  return {
    images,
    containers: containersOf(containers, df, engine, images, times),
    ...objectsOf(networks, df),
    usage,
    rootDir: info.DockerRootDir ?? '',
    driver: info.Driver ?? '',
    containerdAddress: info.Containerd?.Address || undefined,
    engine,
    contentExact:
      imageStore === 'containerd' ? images.every((image) => image.contentSize === undefined) : undefined,
    contentOutsideLayers: outside,
    ...(podmanFiles ? { podmanFiles } : {}),
    ...(podmanContainerFiles ? { podmanContainerFiles } : {}),
    services,
    ...(storeWarnings(reader.reads).length > 0 ? { warnings: storeWarnings(reader.reads) } : {}),
    takenAt,
    phases: done('doneMs', phases),
  };
}

/** What every read of one inventory shares. `done` records a phase's end (see phaseClock). */
interface Reader {
  docker: DockerApi;
  concurrency: number;
  reads: StoreReads;
  done: <T>(name: string, value: T) => T;
}

/** The milliseconds since the inventory began at the end of each phase, by name: `done` records one. */
function phaseClock() {
  const began = performance.now();
  const phases: Record<string, number> = {};
  const done = <T>(name: string, value: T): T => {
    phases[name] = Math.round(performance.now() - began);
    return value;
  };
  return { phases, done };
}

/** Deleted between the listing and a later call (another run, a user): no longer there to plan. */
const unlessGone = <T>(call: Promise<T>) =>
  call.catch((error) => (isGone(error) ? undefined : Promise.reject(error)));

/**
 * The daemon's answers the inventory starts from, asked at once: the image list, `/info`, `/version`,
 * the containers, the networks, `/system/df` and the swarm's services. The per-image reads start as soon
 * as the image list is in, while /system/df is still computing. On Podman `/system/df` is asked only for
 * volumes' sizes (see podmanDiskUsage), and where its store's files are readable here the image list is
 * read from them instead (see readPodmanImages).
 */
async function readDaemon(reader: Reader, tagTimes: boolean | undefined) {
  const { docker, done } = reader;
  const versionRead = docker.request<ApiVersion>('GET', '/version');
  const infoRead = docker.request<ApiInfo>('GET', '/info');
  const podmanRead = versionRead.then((version) =>
    isPodman(version)
      ? infoRead.then((info) => podmanImagesHere(docker.host, info, reader.reads))
      : undefined,
  );
  const listing = podmanRead
    .then((podman) => podman?.summaries ?? listImages(docker))
    .then((list) => done('listMs', list));
  // On Podman with their sizes, which podmanDiskUsage takes instead of /system/df's.
  const podmanSized = versionRead.then(async (version) => {
    if (!isPodman(version)) return undefined;
    // Where the service may size its containers as the files do, listed without sizes while the image
    // files are read. Handled now: where it is not used (the sized list is asked), its failure is that
    // list's to report.
    const listed = sizedByDiff(engineOf(version, {}).version) ? unsized(docker) : undefined;
    listed?.catch(() => undefined);
    const [info, files] = await Promise.all([infoRead, podmanRead]);
    return sizedPodmanContainers(docker, files && podmanService(version, info), {
      reads: reader.reads,
      listed,
    });
  });
  const containersRead = podmanSized.then((podman) => podman?.containers ?? unsized(docker));
  const storeReading = Promise.all([listing, infoRead, podmanRead]).then(([summaries, info, podman]) =>
    podman ? { podman: podman.stored } : findImageStore(summaries, info, reader.reads, tagTimes),
  );
  const inspecting = Promise.all([listing, storeReading])
    .then(([summaries, store]) => readAllLayers(reader, summaries, store, tagTimes))
    .then((all) => done('inspectMs', all));
  const dfRead = versionRead.then(async (version) => {
    if (isPodman(version)) return done('dfMs', await podmanDiskUsage(docker, containersRead));
    const computable = await imagePartComputable(version, await infoRead);
    const df = await diskUsage(docker, undefined, computable ? OTHER_TYPES : undefined);
    return done('dfMs', computable ? { ...df, imagePartLeftOut: true } : df);
  });
  const [version, info, summaries, containers, networks, df, inspected, services] = await Promise.all([
    versionRead,
    infoRead,
    listing,
    containersRead,
    docker.request<ApiNetwork[]>('GET', '/networks'),
    dfRead,
    inspecting,
    infoRead.then((info) => serviceImages(docker, info)),
  ]);
  return {
    version,
    info,
    summaries,
    containers,
    networks,
    df,
    inspected,
    services,
    store: await storeReading,
    podmanFiles: (await podmanRead) !== undefined,
    podmanContainerFiles: (await podmanSized)?.fromFiles ?? false,
  };
}

/** What the service says of itself that tells whether its containers' sizes can be read (see sizesReadable). */
function podmanService(version: ApiVersion, info: ApiInfo): PodmanService {
  return {
    version: engineOf(version, info).version,
    rootDir: info.DockerRootDir ?? '',
    driver: info.Driver ?? '',
    driverStatus: info.DriverStatus,
  };
}

/**
 * Podman's containers with their sizes: on a service whose store's files are this machine's own (see
 * podmanImagesHere; `service` is given only then), listed without sizes and sized from those files where
 * they size them as the service does (see readContainerSizes; on Podman 4.3 with 100 containers at 500
 * images the unsized list takes 0.5 s and the sized one 2.6–2.8 s, as it sizes each container's whole
 * root file system too); else the list asked with sizes.
 * `listed`: the list without sizes, asked ahead; `readable`: the service was already found to size its
 * containers so (a measure after an inventory).
 */
async function sizedPodmanContainers(
  docker: DockerApi,
  service: PodmanService | undefined,
  opts: { reads?: StoreReads; listed?: Promise<ApiContainerSummary[]>; readable?: boolean } = {},
): Promise<{ containers: ApiContainerSummary[]; fromFiles: boolean }> {
  if (service && (opts.readable || sizesReadable(service))) {
    const listed = await (opts.listed ?? unsized(docker));
    const sizes = await readContainerSizes(
      service.rootDir,
      service.driver,
      listed.map((c) => c.Id),
      opts.reads,
    );
    if (sizes) return { containers: listed.map((c) => ({ ...c, SizeRw: sizes.get(c.Id) })), fromFiles: true };
  }
  const containers = await docker.request<ApiContainerSummary[]>('GET', '/containers/json', {
    all: true,
    size: true,
  });
  return { containers, fromFiles: false };
}

/** The containers without their sizes. */
const unsized = (docker: DockerApi) =>
  docker.request<ApiContainerSummary[]>('GET', '/containers/json', { all: true });

/**
 * Podman's image list from its store's files (see readPodmanImages), only where they are the daemon's own:
 * a daemon on this machine's unix socket, of this machine's host name, whose `/info` counts as many images
 * as images.json holds. A store at the same path of another machine (a service over ssh or TCP, a VM's
 * socket forwarded here) is not taken for the daemon's, nor a read an image came or went during: the API
 * is asked.
 */
async function podmanImagesHere(
  host: string,
  info: ApiInfo,
  reads: StoreReads,
): Promise<PodmanImages | undefined> {
  if (!host.startsWith('unix://') || !info.Name || info.Name !== hostname()) return undefined;
  const files = await readPodmanImages(info.DockerRootDir ?? '', info.Driver ?? '', reads);
  return files && files.records === info.Images ? files : undefined;
}

/**
 * What the inventory takes from Podman's `/system/df`: the containers' sizes, from the container list
 * asked with sizes (`sized`: the same sizes, 3.3 s against df's 14 s at 500 images on Podman 4.3, whose
 * df sizes every image again, a part the inventory never uses: Podman's image bytes are the layer
 * graph's), and where there are volumes, df itself (Podman sizes a volume by a walk of its files, and
 * only df does that walk). Podman's df gives each volume its size and users but an empty driver, no
 * labels and no time (podman v4.3.1 compat/system.go): those come from `/volumes`, for the volumes df lists.
 */
async function podmanDiskUsage(
  docker: DockerApi,
  sized: Promise<ApiContainerSummary[]>,
): Promise<ApiDiskUsage> {
  const listed = (await docker.request<{ Volumes?: ApiVolume[] | null }>('GET', '/volumes')).Volumes ?? [];
  if (listed.length === 0) {
    return { LayersSize: 0, Images: [], Containers: await sized, Volumes: [], BuildCache: [] };
  }
  const df = await diskUsage(docker);
  const byName = new Map(listed.map((v) => [v.Name, v]));
  const volumes = (df.Volumes ?? []).map((v) => {
    const own = byName.get(v.Name);
    return own ? { ...v, Driver: own.Driver, Labels: own.Labels, CreatedAt: own.CreatedAt } : v;
  });
  return { ...df, Volumes: volumes };
}

/** `/system/df`'s parts besides the images' (API 1.42+). */
const OTHER_TYPES = ['container', 'volume', 'build-cache'];

/** A `/system/df` answer, and whether its image part was left out (see imagePartComputable). */
type DfRead = ApiDiskUsage & { imagePartLeftOut?: boolean };

/**
 * Whether `/system/df`'s image part can be left out and computed here instead. On Docker 29's containerd
 * store that part (LayersSize, each image's sizes) sizes every image's snapshots and content once more,
 * about as long as the image list itself takes (2.8 s more at 500 images, measured); its LayersSize is
 * each unpacked platform's snapshot chain once plus each present blob once (moby 29.7.2
 * daemon/containerd/service.go ImageDiskUsage), which the inventory has where the content store is
 * readable here: the images' blobs, and their layers' sizes from their histories (each one snapshot's
 * usage). Before 29 LayersSize also counts containers' and BuildKit's snapshots (snapshotsInLayersSize).
 */
async function imagePartComputable(version: ApiVersion, info: ApiInfo): Promise<boolean> {
  const engine = engineOf(version, info);
  if (engine.imageStore !== 'containerd' || engine.name !== 'docker' || snapshotsInLayersSize(engine)) {
    return false;
  }
  return contentStoreReadable(info.DockerRootDir ?? '');
}

/**
 * `df` whole: where its image part was left out, LayersSize computed as the daemon does when every image's
 * layer sizes are exact and it has at most one platform here (the one its history sizes), else that part
 * asked for after all.
 */
async function withImagePart(
  reader: Reader,
  df: DfRead,
  images: ImageInfo[],
  contents: Map<string, ImageContent | undefined>,
): Promise<ApiDiskUsage> {
  const { imagePartLeftOut, ...answer } = df;
  if (!imagePartLeftOut) return answer;
  const known = images.every(
    (image) => image.layerSizesExact && image.blobs && (contents.get(image.id)?.manifests ?? 2) <= 1,
  );
  if (known) return { ...answer, LayersSize: imageGraphBytes(images) };
  const part = await diskUsage(reader.docker, undefined, ['image']);
  const { LayersSize, Images, ImageUsage } = part;
  return reader.done('dfImagesMs', { ...answer, LayersSize, Images, ImageUsage });
}

/** The image store as this machine can read it from disk, by kind; none of them where it cannot. */
interface StoreAccess {
  /** The containerd store's content folder. */
  content?: string;
  /** When each image target was last tagged, from containerd's metadata (see readTagTimes). */
  tagged?: Map<string, number>;
  /** The classic store's folder (see classicStoreFor). */
  classic?: string;
  podman?: Map<string, StoredImage>;
}

/**
 * Where the image store is on this machine and readable, each image's layers are read from it rather
 * than asked for one inspect per image: the classic store's image and layer databases (with the
 * layers' sizes, so no history either), or the containerd store's content, whose manifest the list
 * names (API 1.46+), with the last tag time a run may need from containerd's metadata (readTagTimes).
 */
async function findImageStore(
  summaries: ApiImageSummary[],
  info: ApiInfo,
  reads: StoreReads,
  tagTimes: boolean | undefined,
): Promise<StoreAccess> {
  const root = info.DockerRootDir ?? '';
  if (summaries.some((s) => s.Descriptor?.digest)) {
    const content = await contentStoreFor(root, summaries.map(target));
    return { content, tagged: content && tagTimes ? await readTagTimes(content) : undefined };
  }
  if (isContainerdStore(info.DriverStatus)) return {};
  const classic = classicStoreFor(root, info.Driver ?? '', summaries[0]?.Id);
  if (classic) return { classic };
  return { podman: await readPodmanStore(root, info.Driver ?? '', reads) };
}

/** Every listed image's layers (see readLayers), in the list's order; undefined for an image deleted meanwhile. */
function readAllLayers(
  reader: Reader,
  summaries: ApiImageSummary[],
  store: StoreAccess,
  tagTimes: boolean | undefined,
): Promise<(ImageRead | undefined)[]> {
  // Layer sizes by chain ID, across images (most layers are shared).
  const chainSizes = new Map<string, number | undefined>();
  return mapPool(summaries, reader.concurrency, (summary) =>
    readLayers(reader, store, summary, chainSizes, tagTimes),
  );
}

/** One image's layers: from the store on disk where it has them, else from the image's inspect. */
async function readLayers(
  reader: Reader,
  store: StoreAccess,
  summary: ApiImageSummary,
  chainSizes: Map<string, number | undefined>,
  tagTimes: boolean | undefined,
): Promise<ImageRead | undefined> {
  const stored =
    (store.classic && readStoredImage(store.classic, summary.Id, chainSizes, tagTimes, reader.reads)) ||
    // Podman records no tag time (its LastTagTime is always zero): its store serves either way.
    store.podman?.get(summary.Id);
  if (stored) return { ...stored, fromStore: true };
  const digest = summary.Descriptor?.digest;
  const tagged = digest && tagTimes ? store.tagged?.get(digest) : 0;
  const layers =
    store.content && digest && tagged !== undefined
      ? await configLayers(store.content, digest, reader.reads)
      : undefined;
  if (layers) return { layers, lastTagMs: Math.max(0, tagged ?? 0), fromStore: true };
  return inspectLayers(reader.docker, summary.Id);
}

/** One image's layers and last tag time from its inspect; undefined when it is gone. */
async function inspectLayers(docker: DockerApi, id: string): Promise<ImageRead | undefined> {
  const inspect = await unlessGone(
    docker.request<{ RootFS?: { Layers?: string[] }; Metadata?: { LastTagTime?: string | null } }>(
      'GET',
      `/images/${id}/json`,
    ),
  );
  return (
    inspect && {
      layers: inspect.RootFS?.Layers ?? [],
      lastTagMs: apiTimeMs(inspect.Metadata?.LastTagTime),
      fromStore: false,
    }
  );
}

/** A listed image that was still there when its layers were read, with that read. */
type PresentImage = ImageRead & { summary: ApiImageSummary };

function presentImages(summaries: ApiImageSummary[], inspected: (ImageRead | undefined)[]): PresentImage[] {
  return summaries.flatMap((summary, i) => {
    const read = inspected[i];
    return read ? [{ summary, ...read }] : [];
  });
}

/** Where the images' layers were read: all from the store on disk, all through the API, or some of each. */
function layersReadFrom(present: PresentImage[]): EngineInfo['layersReadFrom'] {
  const fromStore = present.filter((p) => p.fromStore).length;
  return fromStore === present.length ? 'store' : fromStore === 0 ? 'api' : 'mixed';
}

/** An image's layer sizes, in its layers' order, and whether they are exact. */
interface LayerSizing {
  sizes: number[];
  exact: boolean;
}

/**
 * The images' bytes besides their list entries: on the containerd store the content store (where it is
 * readable here) and its blobs, and every store's layer sizes (see sizeLayers).
 */
async function readImageBytes(
  reader: Reader,
  present: PresentImage[],
  imageStore: ImageStore,
  info: ApiInfo,
  store: StoreAccess,
  df: ApiDiskUsage,
) {
  const contentDir = await contentStoreOf(imageStore, store, info, present);
  const contents = await readContentBlobs(reader, contentDir, present);
  const snapshots = contentDir ? await readSnapshotSizes(contentDir, info.Driver ?? '') : undefined;
  const sized = await sizeLayers(reader, present, imageStore, df, snapshots && { snapshots, contents });
  return { contentDir, contents, sized };
}

/** The snapshots' recorded sizes by name (see readSnapshotSizes), and the images' content read. */
interface SnapshotSizing {
  snapshots: Map<string, number>;
  contents: Map<string, ImageContent | undefined>;
}

/**
 * Each image's layer sizes, by ID: from the store where it sized every layer; else, on the containerd
 * store, from the snapshots' recorded sizes where they settle them (see snapshotLayerSizes); the rest see
 * historySizes.
 */
async function sizeLayers(
  reader: Reader,
  present: PresentImage[],
  imageStore: ImageStore,
  df: ApiDiskUsage,
  sizing?: SnapshotSizing,
): Promise<Map<string, LayerSizing>> {
  if (present.length > 0 && present.every((p) => p.sizes)) return storeSizes(present, imageStore);
  const recorded = sizing ? snapshotLayerSizes(present, sizing) : new Map<string, LayerSizing>();
  const rest = present.filter((p) => !recorded.has(p.summary.Id));
  if (rest.length === 0) return reader.done('snapshotsMs', recorded);
  return new Map([...recorded, ...(await historySizes(reader, rest, imageStore, df))]);
}

/**
 * Layer sizes from the snapshots' recorded sizes: each layer's is its chain's snapshot's, as the image's
 * history gives it. Only for an image whose every layer's snapshot is recorded and whose sizes add up to
 * the image list's unpacked bytes for it (its Size less the content it counts: its blobs but its
 * indexes): one platform unpacked, and a read of the file that matches the daemon's own answer.
 */
function snapshotLayerSizes(present: PresentImage[], sizing: SnapshotSizing): Map<string, LayerSizing> {
  const sized = new Map<string, LayerSizing>();
  for (const { summary, layers } of present) {
    const content = sizing.contents.get(summary.Id);
    const sizes = chainIds(layers).map((chain) => sizing.snapshots.get(chain));
    if (!content || sizes.some((size) => size === undefined)) continue;
    const listedContent = sumOf(content.blobs, (b) => b.size) - content.indexBytes;
    if (sum(sizes as number[]) === summary.Size - listedContent) {
      sized.set(summary.Id, { sizes: sizes as number[], exact: true });
    }
  }
  return sized;
}

/**
 * Every layer sized from the store. On the classic store an image's Size is its layers' total, which
 * checks them; Podman's adds the image's metadata.
 */
function storeSizes(present: PresentImage[], imageStore: ImageStore): Map<string, LayerSizing> {
  return new Map(
    present.map(({ summary, sizes }) => [
      summary.Id,
      {
        sizes: sizes!,
        exact: imageStore !== 'classic' || sum(sizes!) === summary.Size,
      },
    ]),
  );
}

/** Layer sizes from `/system/df`'s image sizes where they settle them, else from histories (see planLayerSizing). */
async function historySizes(
  reader: Reader,
  present: PresentImage[],
  imageStore: ImageStore,
  df: ApiDiskUsage,
): Promise<Map<string, LayerSizing>> {
  const sizing = planLayerSizing(
    present.map(({ summary, layers }) => ({ id: summary.Id, layers, size: summary.Size })),
    // On the containerd store an image's Size includes its content-store blobs, so df's Size - SharedSize
    // is no layer total: every image is sized from its history there.
    imageStore === 'classic' ? dfImageSizes(df) : new Map<string, DfImage>(),
    // Podman's and the containerd store's image sizes include more than the layers.
    imageStore === 'classic',
  );
  const histories = await readHistories(reader, sizing.history);
  return sizing.resolve(reader.done('historyMs', histories));
}

/** `/system/df`'s size and shared size of each image, by ID (shared -1 where it sends none). */
function dfImageSizes(df: {
  Images?: Pick<ApiImageSummary, 'Id' | 'Size' | 'SharedSize'>[] | null;
}): Map<string, DfImage> {
  return new Map((df.Images ?? []).map((i) => [i.Id, { size: i.Size, shared: i.SharedSize ?? -1 }]));
}

/** The history (step sizes, newest first) of each image in `ids`, by ID; none for an image gone meanwhile. */
async function readHistories(reader: Reader, ids: string[]): Promise<Map<string, number[]>> {
  const histories = new Map<string, number[]>();
  await mapPool(ids, reader.concurrency, async (id) => {
    const steps = await unlessGone(reader.docker.request<{ Size: number }[]>('GET', `/images/${id}/history`));
    if (steps)
      histories.set(
        id,
        steps.map((step) => step.Size),
      );
  });
  return histories;
}

/**
 * The containerd store keeps each image's manifest, config and layer blobs besides the snapshots: its
 * content store, when it is on this machine and readable. Undefined on the other stores.
 */
async function contentStoreOf(
  imageStore: ImageStore,
  store: StoreAccess,
  info: ApiInfo,
  present: PresentImage[],
): Promise<string | undefined> {
  if (imageStore !== 'containerd') return undefined;
  return (
    store.content ??
    (await contentStoreFor(
      info.DockerRootDir ?? '',
      present.map((p) => target(p.summary)),
    ))
  );
}

/** Each image's blobs read from the content store in `contentDir`, by ID; none without one. */
async function readContentBlobs(
  reader: Reader,
  contentDir: string | undefined,
  present: PresentImage[],
): Promise<Map<string, ImageContent | undefined>> {
  const blobs = new Map<string, ImageContent | undefined>();
  if (!contentDir) return blobs;
  // Scanned once, and only when some image's ID is its config's digest (Docker 26).
  let scan: Promise<Map<string, string[]>> | undefined;
  const parents = () => (scan ??= referrers(contentDir, reader.reads));
  await mapPool(present, reader.concurrency, async ({ summary }) => {
    blobs.set(summary.Id, await readImageContent(contentDir, target(summary), parents, reader.reads));
  });
  return reader.done('contentMs', blobs);
}

/** When a container last started and finished, epoch ms (see apiTimeMs). */
interface ContainerTimes {
  startedMs: number;
  finishedMs: number;
}

/** The times of each container that is not running, by ID, from its inspect; none for one gone meanwhile. */
async function readContainerTimes(
  reader: Reader,
  containers: ApiContainerSummary[],
): Promise<Map<string, ContainerTimes>> {
  const times = new Map<string, ContainerTimes>();
  await mapPool(
    containers.filter((c) => c.State !== 'running'),
    reader.concurrency,
    async (c) => {
      const state = (
        await unlessGone(
          reader.docker.request<{ State?: { StartedAt?: string; FinishedAt?: string } }>(
            'GET',
            `/containers/${c.Id}/json`,
          ),
        )
      )?.State;
      if (state) {
        times.set(c.Id, { startedMs: apiTimeMs(state.StartedAt), finishedMs: apiTimeMs(state.FinishedAt) });
      }
    },
  );
  return times;
}

/** What is known of one image besides its list entry. */
interface ImageParts {
  layers: string[];
  lastTagMs?: number;
  /** Its layer sizes; undefined for none known (each 0, not exact). */
  sized?: LayerSizing;
  /** Its blobs as read from the containerd store's content store. */
  blobs?: Blob[];
}

/** One image from its list entry and its layers, on an `imageStore` (Docker's or Podman's). */
function toImageInfo(summary: ApiImageSummary, imageStore: ImageStore, parts: ImageParts): ImageInfo {
  const layerSizes = parts.sized?.sizes ?? parts.layers.map(() => 0);
  const layerTotal = sum(layerSizes);
  // What the image holds besides its layers: Podman's metadata, or the containerd store's content.
  const extra = Math.max(0, summary.Size - layerTotal);
  return {
    id: summary.Id,
    repoTags: realTags(summary.RepoTags),
    repoDigests: (summary.RepoDigests ?? []).filter((d) => d !== '<none>@<none>'),
    createdMs: summary.Created * 1000,
    size: summary.Size,
    labels: summary.Labels ?? {},
    parentId: parentIdOf(summary.ParentId),
    layers: parts.layers,
    layerSizes,
    layerSizesExact: parts.sized?.exact ?? false,
    lastTagMs: parts.lastTagMs,
    ...(imageStore === 'podman' ? { blobs: [{ key: `metadata:${summary.Id}`, size: extra }] } : {}),
    ...(imageStore === 'containerd' ? (parts.blobs ? { blobs: parts.blobs } : { contentSize: extra }) : {}),
  };
}

/**
 * A parent's ID as the images' own: Podman's compatible list gives it without `sha256:` (4.3 and 5.8),
 * which left Podman's parents unseen.
 */
export function parentIdOf(parentId: string | undefined): string {
  return parentId && /^[0-9a-f]{64}$/.test(parentId) ? `sha256:${parentId}` : (parentId ?? '');
}

/** The containers, each sized as the daemon's usage counts it (see containerBytes), with `times` where read. */
function containersOf(
  containers: ApiContainerSummary[],
  df: ApiDiskUsage,
  engine: EngineInfo,
  images: ImageInfo[],
  times: Map<string, ContainerTimes>,
): ContainerInfo[] {
  const sizeRw = new Map((df.Containers ?? []).map((c) => [c.Id, c.SizeRw ?? 0]));
  const sizeRootFs = new Map((df.Containers ?? []).map((c) => [c.Id, c.SizeRootFs ?? 0]));
  const unpacked = new Map(images.map((image) => [image.id, sum(image.layerSizes)]));
  const snapshotsCounted = snapshotsInLayersSize(engine);
  return containers.map((c) =>
    toContainerInfo(c, containerBytes(c, snapshotsCounted, sizeRw, sizeRootFs, unpacked), times.get(c.Id)),
  );
}

function toContainerInfo(c: ApiContainerSummary, sizeRw: number, times?: ContainerTimes): ContainerInfo {
  return {
    id: c.Id,
    names: (c.Names ?? []).map((n) => n.replace(/^\//, '')),
    imageId: c.ImageID,
    image: c.Image,
    state: c.State,
    createdMs: c.Created * 1000,
    labels: c.Labels ?? {},
    sizeRw,
    networks: [
      ...Object.entries(c.NetworkSettings?.Networks ?? {}).flatMap(([name, n]) => [name, n.NetworkID ?? '']),
      c.HostConfig?.NetworkMode ?? '',
    ].filter(Boolean),
    volumes: (c.Mounts ?? []).filter((m) => m.Type === 'volume' && m.Name).map((m) => m.Name as string),
    ...times,
  };
}

/** The networks, and the volumes and build cache records `/system/df` lists. */
function objectsOf(
  networks: ApiNetwork[],
  df: ApiDiskUsage,
): Pick<Inventory, 'networks' | 'volumes' | 'buildCache'> {
  return {
    networks: networks.map((n) => ({
      id: n.Id,
      name: n.Name,
      driver: n.Driver,
      scope: n.Scope,
      labels: n.Labels ?? {},
      createdMs: msOf(n.Created),
    })),
    volumes: (df.Volumes ?? []).map((v) => ({
      name: v.Name,
      driver: v.Driver,
      labels: v.Labels ?? {},
      size: v.UsageData?.Size ?? -1,
      refCount: v.UsageData?.RefCount ?? -1,
      createdMs: msOf(v.CreatedAt),
    })),
    buildCache: (df.BuildCache ?? []).map((r) => ({
      id: r.ID,
      size: r.Size,
      inUse: r.InUse,
      shared: r.Shared,
      lastUsedMs: Date.parse(r.LastUsedAt ?? r.CreatedAt ?? '') || 0,
    })),
  };
}

interface ApiManifestSummary {
  Kind?: string;
  Size?: { Content?: number } | null;
}

/** Each image's target: its media type and, for an index, how many of its image manifests have content here. */
export interface Target {
  type?: string;
  size?: number;
  presentManifests?: number;
}

/**
 * The targets withUniqueContent needs. Only where index targets are listed and their content would be
 * counted from the API, the list is asked again with its manifests (API 1.47+; measured on 29.7.2 at about
 * the plain list's time): which platforms of an index are here is not in the plain list.
 */
export async function targetsOf(
  docker: DockerApi,
  engine: EngineInfo,
  images: ImageInfo[],
  summaries: ApiImageSummary[],
): Promise<Target[]> {
  const types = summaries.map((s) => s.Descriptor?.mediaType);
  const sizes = summaries.map((s) => s.Descriptor?.size);
  const needed =
    sharedSizeCountsContent(engine) &&
    images.some((image) => image.contentSize !== undefined) &&
    !chainsAllSeen(types.map((type) => ({ targetType: type })));
  if (!needed) return types.map((type, i) => ({ type, size: sizes[i] }));
  const listed = await docker.request<(ApiImageSummary & { Manifests?: ApiManifestSummary[] | null })[]>(
    'GET',
    '/images/json',
    { all: true, manifests: true },
  );
  const present = new Map(
    listed.map((s) => [
      s.Id,
      (s.Manifests ?? []).filter((m) => m.Kind === 'image' && (m.Size?.Content ?? 0) > 0).length,
    ]),
  );
  return types.map((type, i) => ({ type, size: sizes[i], presentManifests: present.get(summaries[i].Id) }));
}

/**
 * Where the content store is not readable here but the API's SharedSize counts shared blobs (Docker 29.5+),
 * each image's content splits in two: what it alone references, freed with it (a blob of its own), and
 * what it shares, freed only when every image sharing it goes (`contentSize`). `/system/df` sends those
 * sizes anyway. `targets`: each image's (see targetsOf), in `images`' order.
 */
export function withUniqueContent(
  images: ImageInfo[],
  engine: Pick<EngineInfo, 'name' | 'version' | 'imageStore'>,
  df: { Images?: Pick<ApiImageSummary, 'Id' | 'Size' | 'SharedSize'>[] | null },
  targets: Target[],
): ImageInfo[] {
  if (!sharedSizeCountsContent(engine) || images.every((image) => image.contentSize === undefined)) {
    return images;
  }
  const sizing = images.map((image, i) => ({
    ...image,
    targetType: targets[i].type,
    targetSize: targets[i].size,
    presentManifests: targets[i].presentManifests,
  }));
  const unique = uniqueContent(sizing, dfImageSizes(df));
  const exact = chainsAllSeen(sizing);
  return images.map((image) => {
    const content = unique.get(image.id);
    if (content === undefined || image.contentSize === undefined) return image;
    return {
      ...image,
      blobs: [{ key: `unique-content:${image.id}`, size: content.own }],
      contentSize: content.shared,
      contentSharedOnly: exact,
    };
  });
}

/**
 * `/system/df`, asked again while its failure is a passing one:
 * - another client's is running: the daemon computes one at a time and refuses a second with "a disk usage
 *   operation is already running" (two runs of this action at once do this); waited for, up to 10 s;
 * - a snapshot vanished while the daemon walked them: right after a BuildKit build on the containerd image
 *   store, BuildKit drops its temporary `…-view` snapshots and a `/system/df` that meets one answers 404
 *   "snapshot … does not exist" (measured: one or two answers after a build); asked again, up to 2 s;
 * - an image or layer removed while the daemon listed them: Docker 20.10 answers HTTP 500 "failed to
 *   retrieve image list: layer sha256:… was not found (corruption?)" when another run of this action
 *   prunes at the same moment (seen in CI), Podman "… not known"; asked again like a vanished snapshot.
 */
export async function diskUsage(
  docker: DockerApi,
  waits = { busy: 50, busyMs: 200, vanished: 20, vanishedMs: 100 },
  types?: string[],
): Promise<ApiDiskUsage> {
  for (let busy = 0, vanished = 0; ;) {
    try {
      return await docker.request<ApiDiskUsage>('GET', '/system/df', types ? { type: types } : undefined);
    } catch (error) {
      let waitMs: number;
      if (/already running/i.test(messageOf(error)) && ++busy < waits.busy) waitMs = waits.busyMs;
      else if ((statusOf(error) === 404 || removedMidList(error)) && ++vanished < waits.vanished) {
        waitMs = waits.vanishedMs;
      } else throw error;
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
}

/**
 * The daemon's per-class byte totals now, for measuring what a prune freed. On Podman the image bytes are
 * the layer arithmetic over the images still there (the other classes as podmanDiskUsage gives them):
 * read from its store's files where they are readable here (see readPodmanImages), else over the images
 * listed, whose layers are the inventory's (layers of an image ID never change; an image that appeared
 * since is read afresh).
 */
export async function measureUsage(docker: DockerApi, inventory: Inventory): Promise<Usage> {
  const podman = inventory.engine.imageStore === 'podman';
  const files = inventory.podmanFiles
    ? await readPodmanImages(inventory.rootDir, inventory.driver ?? '')
    : undefined;
  const service = inventory.podmanContainerFiles
    ? {
        version: inventory.engine.version,
        rootDir: inventory.rootDir,
        driver: inventory.driver ?? '',
        driverStatus: [],
      }
    : undefined;
  const df = podman
    ? await podmanDiskUsage(
        docker,
        sizedPodmanContainers(docker, service, { readable: true }).then((sized) => sized.containers),
      )
    : await diskUsage(docker);
  const usage = await storeUsage(inventory.engine, usageOf(df), [], inventory.contentOutsideLayers);
  if (!podman) return usage;
  if (files) {
    const images = files.summaries.map((summary) => {
      const { layers, sizes } = files.stored.get(summary.Id)!;
      return toImageInfo(summary, 'podman', { layers, sized: { sizes, exact: true } });
    });
    return { ...usage, layers: imageGraphBytes(images) };
  }
  const known = new Map(inventory.images.map((image) => [image.id, image]));
  const listed = await listImages(docker);
  const images: ImageInfo[] = [];
  for (const summary of listed) {
    const image = known.get(summary.Id) ?? (await readPodmanImage(docker, summary));
    if (image) images.push(image);
  }
  return { ...usage, layers: imageGraphBytes(images) };
}

/** One Podman image's layers and sizes, for an image the inventory did not see. */
async function readPodmanImage(docker: DockerApi, summary: ApiImageSummary): Promise<ImageInfo | undefined> {
  try {
    const inspect = await docker.request<{ RootFS?: { Layers?: string[] } }>(
      'GET',
      `/images/${summary.Id}/json`,
    );
    const steps = await docker.request<{ Size: number }[]>('GET', `/images/${summary.Id}/history`);
    const layers = inspect.RootFS?.Layers ?? [];
    const sized = layerSizesFromHistory(
      layers,
      steps.map((s) => s.Size),
    );
    return toImageInfo(summary, 'podman', { layers, sized });
  } catch {
    return undefined; // removed meanwhile
  }
}
