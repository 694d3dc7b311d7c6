// Shared data of the pipeline: inputs -> inventory -> plan -> outcome -> report.
// Everything here is plain data so the planner and the renderers stay pure.

export type Mode = 'report' | 'prune';
export type ImageScope = 'none' | 'dangling' | 'unused';
export type ContainerScope = 'none' | 'stopped';
export type NetworkScope = 'none' | 'unused';
export type BuildCacheScope = 'none' | 'unused';
export type VolumeScope = 'none' | 'anonymous';
/** `unused`: images the Actions runner built for Dockerfile container actions are candidates. */
export type RunnerImageScope = 'none' | 'unused';
/** `stale`: idle, old builder containers of buildx's docker-container driver are removed. */
export type BuildxBuilderScope = 'none' | 'stale';

/** An `older-than` input: a duration back from "now", or a fixed moment. */
export interface AgeLimit {
  /** The input as the user wrote it, for messages. */
  text: string;
  /** Set for durations (`7d`, `1h30m`). */
  durationMs?: number;
  /** Set for timestamps (epoch milliseconds). */
  atMs?: number;
}

/** One parsed entry of the `protect` input. */
export type ProtectRule =
  | {
      kind: 'reference';
      entry: string;
      /** Normalised name pattern, e.g. `docker.io/library/postgres` or `localhost:5000/team/*`. */
      name: string;
      /** Tag pattern; undefined means every tag. */
      tag?: string;
      /** `NAME@sha256:…`: the manifest digest, matched exactly against the image's `RepoDigests`. */
      digest?: string;
    }
  | { kind: 'id'; entry: string; /** lower-case hex without `sha256:`, 12 to 64 digits */ prefix: string }
  | { kind: 'label'; entry: string; key: string; value?: string };

export type KeepRecentBy = 'created' | 'used';

export interface Inputs {
  mode: Mode;
  images: ImageScope;
  olderThan?: AgeLimit;
  protect: ProtectRule[];
  keepRecent: number;
  /** What `keep-recent` ranks by: creation (the newest builds), or last use by a container (deployments). */
  keepRecentBy: KeepRecentBy;
  /**
   * Grace period (`min-age`), ms: an image, container or build-cache record that arrived or was last used
   * this recently is kept (`too-recent`); 0 turns it off.
   */
  minAgeMs: number;
  /** The same for runner-built action images (`runner-images-min-age`), ms; 0 turns it off. */
  runnerImagesMinAgeMs: number;
  /** Undefined: DOCKER_HOST from the environment, else the local socket. */
  dockerHost?: string;
  /** Where the JSON report goes. */
  reportFile: string;
  /** Containers that must be running (and healthy) before and after. */
  criticalContainers: string[];
  /** How long a critical container's `starting` health is waited for. */
  gateTimeoutMs: number;
  /** Limit for every API call. */
  apiTimeoutMs: number;
  /** A hard bound on the whole run (`time-limit`); undefined: 10 × api-timeout (+ the gates' waits). */
  timeLimitMs?: number;
  /** Per-object failures fail the step. */
  failOnError: boolean;
  containers: ContainerScope;
  networks: NetworkScope;
  buildCache: BuildCacheScope;
  /** Bytes of the most recently used build cache to keep (`build-cache-keep`). */
  buildCacheKeep?: number;
  volumes: VolumeScope;
  /** Images the Actions runner built for container actions (`<6 hex>:<32 hex>` tags). */
  runnerImages: RunnerImageScope;
  /** Builder containers (and their state volumes) left by buildx's docker-container driver. */
  buildxBuilders: BuildxBuilderScope;
  /** Post a sticky pull-request comment (the action only). */
  prComment: boolean;
  /** Token for the comment; '' when none. Never printed. */
  githubToken: string;
  /** Free space wanted on the data root's filesystem (`free-space`). */
  freeSpace?: Target;
  /** Free inodes wanted there (`free-inodes`). */
  freeInodes?: Target;
  /** Cap on what the daemon itself uses: layers, containers, build cache (`max-usage`), bytes. */
  maxUsage?: number;
  /** Watermarks: where removal stops once a start line above is crossed (`free-space-target`, …). */
  freeSpaceTarget?: Target;
  freeInodesTarget?: Target;
  maxUsageTarget?: number;
  /** Where usage history is kept between runs (`state-dir`). */
  stateDir: string;
  /** The clean-up lock's file (prune mode); undefined: per daemon in the user's private folder. */
  lockFile?: string;
  /** How long a prune waits for the clean-up lock before it skips (reports only). */
  lockWaitMs: number;
  /** The path whose filesystem the disk figures and budgets measure (`data-path`); found when undefined. */
  dataPath?: string;
}

/** A budget target: an absolute amount (bytes or inodes), or a share of the filesystem's total. */
export interface Target {
  /** The input as written, for messages. */
  text: string;
  amount?: number;
  /** 0 < percent < 100 */
  percent?: number;
}

export interface ImageInfo {
  /** `sha256:<64 hex>` */
  id: string;
  /** `repo:tag` references as Docker lists them, without `<none>:<none>`. */
  repoTags: string[];
  repoDigests: string[];
  /** Creation time, epoch ms (whole seconds: the API gives seconds). */
  createdMs: number;
  /** Docker's `Size`: all layers of the image. */
  size: number;
  labels: Record<string, string>;
  /** `sha256:...` of the parent (legacy builder), or '' */
  parentId: string;
  /** Diff IDs from the bottom layer up (`RootFS.Layers`). */
  layers: string[];
  /** Bytes of each layer, same order as `layers`. */
  layerSizes: number[];
  /** False when the history could not be matched to the layers without guessing. */
  layerSizesExact: boolean;
  /**
   * Stored objects besides the layer snapshots that go when no remaining image references them, by
   * key: on the containerd store the manifest, config and layer blobs of its content store (by digest);
   * on Podman the image's own metadata. Absent on the classic store, where layers are everything.
   */
  blobs?: Blob[];
  /**
   * Containerd store without a readable content store: the image's content-store bytes that `blobs` does
   * not hold (an upper bound of what they free): all of its content, or with `contentSharedOnly` the part
   * other images share.
   */
  contentSize?: number;
  /**
   * Set where `blobs` holds the content only this image references, counted from the API's sizes (see
   * uniqueContent): true when `contentSize` is then exactly what it shares with other images; false when
   * the daemon may see sharing the inventory does not (see chainsAllSeen), so `blobs` is a low bound.
   */
  contentSharedOnly?: boolean;
  /** When a tag was last put on the image (`Metadata.LastTagTime`), epoch ms; 0 when unknown. */
  lastTagMs?: number;
}

export interface Blob {
  key: string;
  size: number;
}

/** Which engine answers, as `/version` and `/info` tell. */
export interface EngineInfo {
  /** `docker` (Docker Engine / moby) or `podman` (Podman's Docker-compatible service). */
  name: 'docker' | 'podman';
  version: string;
  apiVersion: string;
  /**
   * `classic`: Docker's graph-driver store; `containerd`: the containerd image store (Docker 29's
   * default on new installs); `podman`: containers/storage.
   */
  imageStore: ImageStore;
  /** The daemon's ID (`/info` ID), to tell daemons apart. */
  id: string;
  /**
   * Where the images' layers were read: `store` (the image store on this machine's disk, no per-image
   * request), `api` (an inspect, and a history where needed, per image) or `mixed`.
   */
  layersReadFrom?: 'store' | 'api' | 'mixed';
}

export type ImageStore = 'classic' | 'containerd' | 'podman';

/**
 * How the image bytes were estimated and how far the figure can be from what the disk frees.
 * `layer-graph`: exact sizes of the layers no remaining image references (classic store).
 * `layer-graph+content`: the same for the unpacked snapshots plus the content-store blobs nothing else
 * references, read from the content store's own manifests (containerd store, data root readable here).
 * `layer-graph+content-api`: the same, the content that each removed image alone references counted from
 * the API's sizes (`Size` − `SharedSize`, Docker 29.5+), where no content is shared among removed images only
 * (containerd store whose content store cannot be read from here).
 * `layer-graph+content-bounded`: snapshots exact, content-store blobs between `low` and `high`
 * (containerd store whose content store cannot be read from here).
 * `layer-graph+metadata`: Podman's recorded layer sizes and image metadata; its `/system/df` has no
 * layer total, so the measured figure is the same arithmetic on what is left after the prune.
 */
export interface EstimateMethod {
  method:
    | 'layer-graph'
    | 'layer-graph+content'
    | 'layer-graph+content-api'
    | 'layer-graph+content-bounded'
    | 'layer-graph+metadata';
  /** Whether the figure is exact in the engine's own accounting. */
  exact: boolean;
  /** Bounds of the image bytes freed, when not exact. */
  low?: number;
  high?: number;
  /** One sentence for the summary. */
  note: string;
}

export interface ContainerInfo {
  id: string;
  /** Names without the leading slash. */
  names: string[];
  /** `sha256:...` of the image the container was created from. */
  imageId: string;
  /** The image reference the container was created with. */
  image: string;
  state: string;
  /** Epoch ms. */
  createdMs: number;
  labels: Record<string, string>;
  /** Bytes of its writable layer (`SizeRw`), 0 when unknown. */
  sizeRw: number;
  /** Networks it is attached to or configured for (names or IDs). */
  networks: string[];
  /** Names of the volumes it mounts. */
  volumes: string[];
  /** When it last started and finished (`State.StartedAt`, `FinishedAt`), epoch ms; 0 when never or unknown. */
  startedMs?: number;
  finishedMs?: number;
}

export interface NetworkInfo {
  id: string;
  name: string;
  driver: string;
  scope: string;
  labels: Record<string, string>;
  /** Epoch ms. */
  createdMs: number;
}

export interface VolumeInfo {
  name: string;
  driver: string;
  labels: Record<string, string>;
  /** Bytes, -1 when the daemon does not know. */
  size: number;
  /** Containers referring to it, -1 when unknown. */
  refCount: number;
  /** Epoch ms, 0 when unknown. */
  createdMs: number;
}

export interface BuildCacheRecord {
  id: string;
  size: number;
  inUse: boolean;
  shared: boolean;
  /** Epoch milliseconds of the last use (creation when never used). */
  lastUsedMs: number;
}

/** The daemon's own per-class byte totals (`/system/df`), to measure what a prune freed. */
export interface Usage {
  layers: number;
  containers: number;
  volumes: number;
  buildCache: number;
}

export interface Inventory {
  images: ImageInfo[];
  containers: ContainerInfo[];
  networks: NetworkInfo[];
  volumes: VolumeInfo[];
  buildCache: BuildCacheRecord[];
  usage: Usage;
  /** The daemon's data root (`DockerRootDir`). */
  rootDir: string;
  /** The storage driver, or on the containerd store the snapshotter (`/info`'s Driver). */
  driver?: string;
  /** The socket of the containerd the daemon uses (`/info`'s Containerd.Address, API 1.46+). */
  containerdAddress?: string;
  engine: EngineInfo;
  /** Whether the content-store blobs of every image could be read (containerd store only). */
  contentExact?: boolean;
  /**
   * The content store's folder when the daemon's `LayersSize` leaves it out (containerd store before
   * Docker 28): the measured image bytes add its size, read from disk, before and after.
   */
  contentOutsideLayers?: string;
  /** Podman's image list was read from its store's files, checked as the daemon's own (see podmanImagesHere). */
  podmanFiles?: boolean;
  /** Podman's containers were sized from its store's files (see podman-containers.ts), the list asked unsized. */
  podmanContainerFiles?: boolean;
  /** Epoch milliseconds when the inventory was taken. */
  takenAt: number;
  /** When each of the inventory's reads finished, ms after it began (listMs, dfMs, inspectMs, …). */
  phases?: Record<string, number>;
  /** What the inventory warns of: limits hit reading the image store on disk (its API was asked instead). */
  warnings?: string[];
  /** Builder containers of buildx's docker-container driver (only looked into with `buildx-builders: stale`). */
  builders?: BuilderInfo[];
  /** Swarm services' images, where the daemon is a swarm manager (undefined elsewhere). */
  services?: ServiceImage[];
}

/** An image reference a swarm service names: its current spec's, or its previous spec's (a rollback). */
export interface ServiceImage {
  service: string;
  /** As the spec has it: `name[:tag][@sha256:…]`, or an image ID. */
  image: string;
  previous: boolean;
}

/** A builder container of buildx's docker-container driver (`buildx_buildkit_<builder>0`). */
export interface BuilderInfo {
  containerId: string;
  /** The container's name. */
  name: string;
  /** buildx's builder name. */
  builder: string;
  /** Processes in it besides an init (buildkitd idles as one); 0 when not running; undefined when unknown. */
  processes?: number;
  /** Whether buildx on this host lists the builder; undefined when buildx is not available. */
  known?: boolean;
  /** buildx's last activity of the builder (epoch ms), when it lists one. */
  lastActivityMs?: number;
  /** The current job's builder: BUILDX_BUILDER, or the builder buildx calls current. */
  current: boolean;
}

export type ImageReason =
  | 'remove'
  | 'in-use'
  | 'protected'
  | 'parent'
  | 'tagged'
  | 'keep-recent'
  | 'too-recent'
  /** Named by a swarm service's spec or previous spec (its rollback). */
  | 'service'
  | 'not-selected'
  /** A candidate the budget did not need: the targets were met before its turn. */
  | 'budget-met';

export interface ImageDecision {
  image: ImageInfo;
  action: 'remove' | 'keep';
  reason: ImageReason;
  /** Human-readable detail: container names, the protect entry, the rank... */
  detail: string;
  /** A runner-built action image (`<6 hex>:<32 hex>` tags only): a class of its own. */
  runnerImage?: boolean;
}

export type ObjectKind = 'container' | 'network' | 'volume';

/** A decision about a container, network or volume. */
export interface ObjectDecision {
  kind: ObjectKind;
  /** Container or network ID, volume name: what the API deletes. */
  id: string;
  name: string;
  /** Epoch ms, 0 when unknown. */
  createdMs: number;
  /** Bytes it frees when removed (container writable layer, volume data), 0 when unknown. */
  size: number;
  action: 'remove' | 'keep';
  reason:
    | 'remove'
    | 'running'
    | 'in-use'
    | 'protected'
    | 'too-recent'
    | 'predefined'
    | 'named'
    | 'not-local'
    | 'not-selected'
    | 'budget-met';
  detail: string;
  /** Removed with `force` (an idle builder container, which is running). */
  force?: boolean;
}

export interface BuildCachePlan {
  /** Sent to `/build/prune`: `until` filter and `keep-storage`. */
  until?: string;
  keepStorage?: number;
  /** The daemon's API version: from 1.48 the size target is `reserved-space` + `max-used-space`. */
  apiVersion?: string;
  records: number;
  candidates: number;
  estimatedBytes: number;
  detail: string;
}

export interface Estimate {
  images: number;
  containers: number;
  volumes: number;
  buildCache: number;
  total: number;
}

export interface Plan {
  mode: Mode;
  images: ImageDecision[];
  /** Containers, networks and volumes, in that order. */
  objects: ObjectDecision[];
  /** Undefined when `build-cache` is none. */
  buildCache?: BuildCachePlan;
  estimate: Estimate;
  /** Untagged parent images that Docker deletes together with the planned images (decided `remove`, reason `parent`). */
  cascade: string[];
  /** Planned images that keep child images: only their tags can go, the image stays as an untagged parent. */
  untagOnly: string[];
  /** Planned images whose delete must keep their (protected) untagged parents: `noprune`. */
  noPrune: string[];
  /** Exact bytes of image layers that nothing left behind references (also `estimate.images`). */
  estimatedBytes: number;
  /** False when some layer sizes had to be guessed. */
  estimateExact: boolean;
  /** How the image bytes were estimated (depends on the engine), with bounds when not exact. */
  estimateMethod: EstimateMethod;
  /** Moment before which an image must be created to be a candidate (epoch ms), if any. */
  cutoffMs?: number;
  /** `protect` entries that matched nothing. */
  unmatchedProtect: string[];
  /**
   * The clock that ranked each repository for `keep-recent` (by its name as people write it): `created`,
   * or `arrival` where creation times are reproducible-build stamps (before 2000, or one value for all).
   */
  keepRecentClocks?: Record<string, 'created' | 'arrival'>;
  /** Runner-built action images the plan removes, and the layer bytes they alone free. */
  runnerImages?: { count: number; bytes: number };
  /** Set when a budget (`free-space`, `free-inodes`, `max-usage`) is given. */
  budget?: BudgetPlan;
}

/** The filesystem and the daemon's usage a budget is measured against. */
export interface BudgetState {
  /** Undefined when the data root's filesystem is not visible from here. */
  freeBytes?: number;
  totalBytes?: number;
  freeInodes?: number;
  totalInodes?: number;
  /** What the daemon uses: layers + containers + build cache, bytes. */
  usage: number;
}

/** One removal of a budgeted prune, in the order they are done. */
export interface BudgetStep {
  kind: 'container' | 'build-cache' | 'image';
  /** Container ID, image ID, or `build-cache`. */
  id: string;
  name: string;
  /** Bytes this removal frees given the ones before it (exact from the layer graph for images). */
  bytes: number;
  /** Bytes freed by this step and all before it. */
  runningTotal: number;
  /** Epoch ms of the last use that decided the order (images and containers). */
  lastUsedMs?: number;
  /** Whether the byte budgets are met once this step is done. */
  met: boolean;
}

/** A budget's lines, resolved: bytes and the input text. */
export interface BudgetLines {
  freeSpace?: { text: string; bytes?: number };
  freeInodes?: { text: string; inodes?: number };
  maxUsage?: { text: string; bytes: number };
}

export interface BudgetPlan {
  /** Where removal stops: the `*-target` inputs, or the start lines where none is given. */
  targets: BudgetLines;
  /** The start lines (`free-space`, `free-inodes`, `max-usage`): nothing is removed while all are met. */
  starts: BudgetLines;
  /** The start lines crossed before the run (input names), which set removal going; empty when none. */
  triggeredBy: string[];
  before: BudgetState;
  /** Bytes that must be freed to meet the byte budgets (free-space, max-usage); 0 when met. */
  needBytes: number;
  /** Inodes that must be freed; 0 when met, undefined when there is no inode budget or it cannot be measured. */
  needInodes?: number;
  /** Every budget was met before anything was removed. */
  metAtStart: boolean;
  /** The removals this budget takes, in order (the plan's removals of containers, build cache, images). */
  steps: BudgetStep[];
  /** Candidates in the budget order beyond the last step, kept with reason budget-met. */
  notNeeded: number;
  /** 1-based step after which the byte budgets are met, 0 when met at the start, undefined when never. */
  metAfter?: number;
  /** Bytes still missing once every allowed step is done (byte budgets), 0 when they can be met. */
  shortfallBytes: number;
  /** When the budget cannot be met: the largest kept objects and why they are kept. */
  holding: { kind: string; name: string; bytes: number; reason: string }[];
  /** Budgets that cannot be evaluated here (a remote daemon's disk), with why. */
  unmeasurable: string[];
  /** After a prune: the state measured at the end, and whether every budget was met. */
  after?: BudgetState;
  metAfterPrune?: boolean;
}

export type RemovalStatus = 'removed' | 'untagged' | 'gone' | 'conflict' | 'error';

export interface RemovalResult {
  id: string;
  status: RemovalStatus;
  /** The daemon's message for conflicts and errors. */
  message?: string;
  /** Not attempted: the run stopped before its turn (status `error`, the message says why). */
  skipped?: boolean;
  /** IDs Docker reports as deleted (the image and parents removed with it). */
  deleted: string[];
  /** References Docker reports as untagged. */
  untagged: string[];
  /** The request got no HTTP answer (refused, reset, timed out). */
  connectionFailed?: boolean;
  /** Image IDs a delete of this image removed that the plan did not (a tag moved to them meanwhile). */
  unplanned?: string[];
  /** Tags removed in this run and put back after the daemon refused to delete the image (409). */
  restored?: string[];
}

export interface ObjectResult {
  kind: ObjectKind;
  id: string;
  status: 'removed' | 'gone' | 'conflict' | 'error';
  message?: string;
  /** Not attempted: the run stopped before its turn (status `error`, the message says why). */
  skipped?: boolean;
}

export interface BuildCacheResult {
  status: 'removed' | 'busy' | 'error';
  reclaimedBytes: number;
  message?: string;
}

/** A critical container's safety gate: ok, or why not. */
export interface GateResult {
  container: string;
  ok: boolean;
  reason: string;
}

/** A path whose filesystem is measured: what it holds and why it was chosen. */
export interface DiskPlace {
  path: string;
  /** `snapshots`: the containerd image store's snapshots (or containerd's root); `data-path`: the input. */
  holds: 'data-root' | 'snapshots' | 'data-path';
  why: string;
}

/** The data root's free bytes and inodes, when the measured filesystem is another. */
export interface DataRootDisk {
  path: string;
  freeBefore?: number;
  freeAfter?: number;
  inodesFreeBefore?: number;
  inodesFreeAfter?: number;
}
