// Shared data of the pipeline: inputs -> inventory -> plan -> outcome -> report.
// Everything here is plain data so the planner and the renderers stay pure.

export type Mode = 'report' | 'prune';
export type ImageScope = 'none' | 'dangling' | 'unused';

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
    }
  | { kind: 'id'; entry: string; /** lower-case hex without `sha256:`, 12 to 64 digits */ prefix: string }
  | { kind: 'label'; entry: string; key: string; value?: string };

export interface Inputs {
  mode: Mode;
  images: ImageScope;
  olderThan?: AgeLimit;
  protect: ProtectRule[];
  keepRecent: number;
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
  /** Per-object failures fail the step. */
  failOnError: boolean;
}

export interface ImageInfo {
  /** `sha256:<64 hex>` */
  id: string;
  /** `repo:tag` references as Docker lists them, without `<none>:<none>`. */
  repoTags: string[];
  repoDigests: string[];
  /** Creation time, epoch seconds. */
  created: number;
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
  created: number;
  labels: Record<string, string>;
}

export interface Inventory {
  images: ImageInfo[];
  containers: ContainerInfo[];
  /** Docker's `LayersSize` from `/system/df`: exact bytes of all image layers. */
  layersSize: number;
  apiVersion: string;
  /** Epoch milliseconds when the inventory was taken. */
  takenAt: number;
}

export type ImageReason =
  'remove' | 'in-use' | 'protected' | 'parent' | 'tagged' | 'keep-recent' | 'too-recent' | 'not-selected';

export interface ImageDecision {
  image: ImageInfo;
  action: 'remove' | 'keep';
  reason: ImageReason;
  /** Human-readable detail: container names, the protect entry, the rank... */
  detail: string;
}

export interface Plan {
  mode: Mode;
  images: ImageDecision[];
  /** Untagged parent images that Docker deletes together with the planned images (decided `remove`, reason `parent`). */
  cascade: string[];
  /** Planned images that keep child images: only their tags can go, the image stays as an untagged parent. */
  untagOnly: string[];
  /** Planned images whose delete must keep their (protected) untagged parents: `noprune`. */
  noPrune: string[];
  /** Exact bytes of image layers that nothing left behind references. */
  estimatedBytes: number;
  /** False when some layer sizes had to be guessed. */
  estimateExact: boolean;
  /** Moment before which an image must be created to be a candidate (epoch ms), if any. */
  cutoffMs?: number;
  /** `protect` entries that matched nothing. */
  unmatchedProtect: string[];
}

export type RemovalStatus = 'removed' | 'untagged' | 'gone' | 'conflict' | 'error';

export interface RemovalResult {
  id: string;
  status: RemovalStatus;
  /** The daemon's message for conflicts and errors. */
  message?: string;
  /** IDs Docker reports as deleted (the image and parents removed with it). */
  deleted: string[];
  /** References Docker reports as untagged. */
  untagged: string[];
  /** The request got no HTTP answer (refused, reset, timed out). */
  connectionFailed?: boolean;
}

export interface Outcome {
  results: RemovalResult[];
  /** Measured: LayersSize before minus after. */
  reclaimedBytes: number;
  layersSizeAfter: number;
}
