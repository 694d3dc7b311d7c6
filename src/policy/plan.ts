// Deciding, as a pure function: inventory + inputs + now -> plan. Every image gets a decision and a
// reason; nothing here talks to Docker.

import {
  ago,
  arrivalOf,
  containerActivityMs,
  durationText,
  rankingClock,
  type Arrival,
  type FirstSeen,
} from './age';
import { bytesFreed, estimateMethod } from './estimate';
import {
  displayRepository,
  findObjectProtection,
  findProtection,
  repositoryOf,
  ruleMatches,
  splitDigestReference,
  splitReference,
} from './protect';
import type {
  BuilderInfo,
  BuildCachePlan,
  BuildCacheRecord,
  ContainerInfo,
  ImageDecision,
  ImageInfo,
  Inputs,
  Inventory,
  NetworkInfo,
  ObjectDecision,
  Plan,
  ServiceImage,
  VolumeInfo,
} from '../types';
import { apiAtLeast, pushTo, sumOf } from '../collections';
import { formatBytes } from '../units';

export type Policy = Pick<Inputs, 'mode' | 'images' | 'olderThan' | 'protect' | 'keepRecent'> &
  Partial<
    Pick<
      Inputs,
      | 'minAgeMs'
      | 'runnerImagesMinAgeMs'
      | 'containers'
      | 'networks'
      | 'buildCache'
      | 'buildCacheKeep'
      | 'volumes'
      | 'runnerImages'
      | 'buildxBuilders'
      | 'keepRecentBy'
    >
  > & {
    /** With `keep-recent-by: used`: when a container last used each image (see containerUseTimes), epoch ms. */
    lastUse?: Map<string, number>;
    /** Candidates a budget does not need (see src/policy/budget.ts). */
    budgetCut?: BudgetCut;
    /** The usage history's first sightings, where an earlier run's history exists (see FirstSeen). */
    firstSeen?: FirstSeen;
  };

/** What a budget leaves: candidates kept with reason budget-met. */
export interface BudgetCut {
  images: ReadonlySet<string>;
  containers: ReadonlySet<string>;
  /** `none`: no build cache is pruned; a number: prune down to that many bytes (keep-storage). */
  buildCache?: 'none' | number;
  /** Met before anything is removed: networks and volumes stay too. */
  everything: boolean;
}

const BUDGET_MET = 'not needed: the budget is met before its turn';

/** `buildx-builders: stale` without `older-than`: builders idle this long are stale. */
export const BUILDER_DEFAULT_AGE_MS = 24 * 3_600_000;

/**
 * The tag the Actions runner gives an image it builds for a Dockerfile container action: 6 lower-case hex
 * digits (a hash of the runner's folder) and 32 (the step's ID). Podman lists short names under `localhost/`.
 */
const RUNNER_TAG = /^(?:localhost\/)?[0-9a-f]{6}:[0-9a-f]{32}$/;

/** An image whose tags all have the runner's form (at least one): built by the runner for one job. */
export function isRunnerImage(image: Pick<ImageInfo, 'repoTags'>): boolean {
  return image.repoTags.length > 0 && image.repoTags.every((tag) => RUNNER_TAG.test(tag));
}

type Verdict = Pick<ObjectDecision, 'action' | 'reason' | 'detail' | 'force'>;
const keepAs = (reason: ObjectDecision['reason'], detail: string): Verdict => ({
  action: 'keep',
  reason,
  detail,
});
/** A container's first name, else its short ID. */
export const nameOf = (c: ContainerInfo) => c.names[0] ?? c.id.slice(0, 12);

/**
 * Classes are planned in the order they are cleaned (containers, images, networks, build cache,
 * volumes), each with the earlier ones in mind: a container removed in this run no longer pins its
 * image, network or volume.
 */
export function planRemovals(inventory: Inventory, policy: Policy, nowMs: number): Plan {
  const cutoffMs = policy.olderThan
    ? (policy.olderThan.atMs ?? nowMs - (policy.olderThan.durationMs ?? 0))
    : undefined;
  const builders = new Map(
    (policy.buildxBuilders === 'stale' ? (inventory.builders ?? []) : []).map((b) => [b.containerId, b]),
  );
  const builderCutoffMs = cutoffMs ?? nowMs - BUILDER_DEFAULT_AGE_MS;
  const containerDecisions = inventory.containers.map((c) => {
    const builder = builders.get(c.id);
    return builder
      ? decideBuilder(c, builder, policy, builderCutoffMs)
      : decideContainer(c, policy, cutoffMs, nowMs);
  });
  const removedContainers = new Set(containerDecisions.filter((d) => d.action === 'remove').map((d) => d.id));
  const containers = inventory.containers.filter((c) => !removedContainers.has(c.id));

  const imagePlan = planImages(inventory.images, containers, policy, cutoffMs, nowMs, inventory.services, {
    noPruneHonoured: inventory.engine.imageStore !== 'podman',
  });
  const networkDecisions = inventory.networks.map((n) => decideNetwork(n, containers, policy));
  const cache = planBuildCache(inventory.buildCache, policy, cutoffMs, nowMs);
  const buildCache = cache && { ...cache, apiVersion: inventory.engine.apiVersion };
  const volumeDecisions = planVolumes(inventory, policy, removedContainers, [...builders.values()]);
  const objects = [...containerDecisions, ...networkDecisions, ...volumeDecisions];

  const goneIds = new Set([
    ...imagePlan.cascade,
    ...imagePlan.images.filter((d) => d.action === 'remove').map((d) => d.image.id),
  ]);
  const gone = inventory.images.filter((image) => goneIds.has(image.id));
  const remaining = inventory.images.filter((image) => !goneIds.has(image.id));
  return {
    mode: policy.mode,
    ...imagePlan,
    estimateMethod: estimateMethod(inventory.engine.imageStore, gone, remaining, imagePlan.estimateExact),
    objects,
    buildCache,
    estimate: estimateOf(imagePlan.estimatedBytes, objects, buildCache?.estimatedBytes ?? 0),
    cutoffMs,
    runnerImages: runnerImagesFreed(imagePlan.images, inventory.images),
    unmatchedProtect: unmatchedProtect(inventory, policy),
  };
}

/** Volumes, with the containers this run removes in mind; a removed builder's state volume goes with it. */
function planVolumes(
  inventory: Inventory,
  policy: Policy,
  removedContainers: Set<string>,
  builders: BuilderInfo[],
): ObjectDecision[] {
  // A removed builder's state volume goes with it (`<container name>_state`).
  const builderVolumes = new Map<string, BuilderInfo>(
    builders.filter((b) => removedContainers.has(b.containerId)).map((b) => [`${b.name}_state`, b]),
  );
  return inventory.volumes.map((v) =>
    decideVolume(
      v,
      inventory.containers,
      removedContainers,
      policy,
      inventory.engine.apiVersion,
      builderVolumes.get(v.name),
    ),
  );
}

function estimateOf(images: number, objects: ObjectDecision[], buildCache: number): Plan['estimate'] {
  const removedBytes = (kind: ObjectDecision['kind']) =>
    sumOf(
      objects.filter((o) => o.kind === kind && o.action === 'remove'),
      (o) => o.size,
    );
  const containers = removedBytes('container');
  const volumes = removedBytes('volume');
  return { images, containers, volumes, buildCache, total: images + containers + volumes + buildCache };
}

/** What removing the runner images alone frees: layers no other image (removed or not) references. */
function runnerImagesFreed(decisions: ImageDecision[], images: ImageInfo[]): Plan['runnerImages'] {
  const runnerGone = decisions.filter((d) => d.runnerImage && d.action === 'remove').map((d) => d.image);
  const runnerIds = new Set(runnerGone.map((image) => image.id));
  return {
    count: runnerGone.length,
    bytes: bytesFreed(
      runnerGone,
      images.filter((image) => !runnerIds.has(image.id)),
    ),
  };
}

/** The protect entries that match nothing on the host (a typo protects nothing: the report says so). */
function unmatchedProtect(inventory: Inventory, policy: Policy): string[] {
  const objectsForProtection = [
    ...inventory.containers.map((c) => ({ id: c.id, name: nameOf(c), labels: c.labels })),
    ...inventory.networks.map((n) => ({ id: n.id, name: n.name, labels: n.labels })),
    ...inventory.volumes.map((v) => ({ id: v.name, name: v.name, labels: v.labels })),
  ];
  return policy.protect
    .filter(
      (rule) =>
        !inventory.images.some((image) => ruleMatches(rule, image)) &&
        !objectsForProtection.some((o) => findObjectProtection([rule], o)),
    )
    .map((rule) => rule.entry);
}

/** A container decision's fields that are the container's own. */
const containerBase = (c: ContainerInfo) => ({
  kind: 'container' as const,
  id: c.id,
  name: nameOf(c),
  createdMs: c.createdMs,
  size: c.sizeRw,
});

function decideContainer(
  c: ContainerInfo,
  policy: Policy,
  cutoffMs: number | undefined,
  nowMs: number,
): ObjectDecision {
  const base = containerBase(c);
  const verdict = ((): Verdict => {
    if ((policy.containers ?? 'none') === 'none') return keepAs('not-selected', 'containers is none');
    // Only containers that are not running: exited, dead or never started.
    if (!['exited', 'dead', 'created'].includes(c.state)) return keepAs('running', `state ${c.state}`);
    const rule = findObjectProtection(policy.protect, { id: c.id, name: nameOf(c), labels: c.labels });
    if (rule) return keepAs('protected', `matches protect entry "${rule.entry}"`);
    if (cutoffMs !== undefined && c.createdMs > cutoffMs) {
      return keepAs('too-recent', `created after ${new Date(cutoffMs).toISOString()}`);
    }
    const activeMs = containerActivityMs(c, nowMs);
    if ((policy.minAgeMs ?? 0) > 0 && activeMs > nowMs - policy.minAgeMs!) {
      const what = (c.finishedMs ?? 0) > 0 || (c.startedMs ?? 0) > 0 ? 'finished or started' : 'created';
      return keepAs(
        'too-recent',
        `${what} ${ago(activeMs, nowMs)} (min-age ${durationText(policy.minAgeMs!)})`,
      );
    }
    if (policy.budgetCut?.everything || policy.budgetCut?.containers.has(c.id)) {
      return keepAs('budget-met', BUDGET_MET);
    }
    return { action: 'remove', reason: 'remove', detail: `stopped (${c.state})` };
  })();
  return { ...base, ...verdict };
}

/**
 * A builder container of buildx's docker-container driver, with `buildx-builders: stale`: removed (with
 * force, buildkitd runs while idle) when it is not the current job's builder, no build runs in it, it is
 * not protected, and it was created (and, as far as buildx knows, last used) before the cutoff.
 */
function decideBuilder(c: ContainerInfo, b: BuilderInfo, policy: Policy, cutoffMs: number): ObjectDecision {
  const base = containerBase(c);
  const known = b.known === undefined ? '' : b.known ? ', known to buildx' : ', unknown to buildx';
  const verdict = ((): Verdict => {
    if (b.current) return keepAs('in-use', `the current job's buildx builder ${b.builder}`);
    if (b.processes === undefined)
      return keepAs('running', `buildx builder ${b.builder}: its processes could not be read`);
    if (b.processes > 1) {
      return keepAs('running', `buildx builder ${b.builder}: a build is running (${b.processes} processes)`);
    }
    const rule = findObjectProtection(policy.protect, { id: c.id, name: nameOf(c), labels: c.labels });
    if (rule) return keepAs('protected', `matches protect entry "${rule.entry}"`);
    const lastMs = Math.max(c.createdMs, b.lastActivityMs ?? 0);
    if (lastMs > cutoffMs) {
      return keepAs(
        'too-recent',
        `buildx builder ${b.builder} created or used after ${new Date(cutoffMs).toISOString()}` +
          (policy.olderThan ? '' : ' (24h when older-than is empty)'),
      );
    }
    return {
      action: 'remove',
      reason: 'remove',
      detail: `stale buildx builder ${b.builder} (${b.processes === 0 ? c.state : 'idle'}${known})`,
      force: b.processes > 0,
    };
  })();
  return { ...base, ...verdict };
}

const PREDEFINED_NETWORKS = ['bridge', 'host', 'none'];

function decideNetwork(n: NetworkInfo, containers: ContainerInfo[], policy: Policy): ObjectDecision {
  const base = { kind: 'network' as const, id: n.id, name: n.name, createdMs: n.createdMs, size: 0 };
  const verdict = ((): Verdict => {
    if ((policy.networks ?? 'none') === 'none') return keepAs('not-selected', 'networks is none');
    if (PREDEFINED_NETWORKS.includes(n.name) || n.scope === 'swarm') {
      return keepAs('predefined', `${n.name} is predefined`);
    }
    const users = containers.filter((c) => c.networks.includes(n.name) || c.networks.includes(n.id));
    if (users.length > 0) return keepAs('in-use', `used by container ${users.map(nameOf).join(', ')}`);
    const rule = findObjectProtection(policy.protect, { id: n.id, name: n.name, labels: n.labels });
    if (rule) return keepAs('protected', `matches protect entry "${rule.entry}"`);
    if (policy.budgetCut?.everything) return keepAs('budget-met', BUDGET_MET);
    return { action: 'remove', reason: 'remove', detail: 'no container is attached to it' };
  })();
  return { ...base, ...verdict };
}

const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

/** Anonymous volumes carry a label from API 1.42 on; older daemons give them a random 64-hex name. */
export function isAnonymousVolume(v: VolumeInfo, apiVersion: string): boolean {
  if (Object.hasOwn(v.labels, ANONYMOUS_LABEL)) return true;
  return !apiAtLeast(apiVersion, 1, 42) && /^[0-9a-f]{64}$/.test(v.name);
}

function decideVolume(
  v: VolumeInfo,
  all: ContainerInfo[],
  removed: Set<string>,
  policy: Policy,
  apiVersion: string,
  /** Set when it is the state volume of a builder removed in this run: it goes too, unless still used. */
  builder?: BuilderInfo,
): ObjectDecision {
  const base = {
    kind: 'volume' as const,
    id: v.name,
    name: v.name,
    createdMs: v.createdMs,
    size: Math.max(0, v.size),
  };
  const verdict = ((): Verdict => {
    if (!builder) {
      if ((policy.volumes ?? 'none') === 'none') return keepAs('not-selected', 'volumes is none');
      if (!isAnonymousVolume(v, apiVersion)) return keepAs('named', 'named volumes are never removed');
      if (v.driver !== 'local') return keepAs('not-local', `driver ${v.driver}`);
    }
    const users = all.filter((c) => c.volumes.includes(v.name));
    const staying = users.filter((c) => !removed.has(c.id));
    if (staying.length > 0) return keepAs('in-use', `mounted by container ${staying.map(nameOf).join(', ')}`);
    // The daemon may know of references the container list does not show (another namespace, a plugin).
    if (v.refCount > users.length) return keepAs('in-use', `referenced by ${v.refCount} container(s)`);
    const rule = findObjectProtection(policy.protect, { id: v.name, name: v.name, labels: v.labels });
    if (rule) return keepAs('protected', `matches protect entry "${rule.entry}"`);
    if (policy.budgetCut?.everything) return keepAs('budget-met', BUDGET_MET);
    const detail = builder ? `state of stale buildx builder ${builder.builder}` : 'anonymous and unused';
    return { action: 'remove', reason: 'remove', detail };
  })();
  return { ...base, ...verdict };
}

/**
 * What `/build/prune` (all unused cache, `until`, `keep-storage`) frees: records not in use and last used
 * before the cutoff, least recently used first, until what is left fits in `keep-storage`. Shared records
 * also belong to images, so they free nothing.
 */
export function planBuildCache(
  records: BuildCacheRecord[],
  policy: Policy,
  cutoffMs: number | undefined,
  nowMs: number,
): BuildCachePlan | undefined {
  if ((policy.buildCache ?? 'none') === 'none') return undefined;
  const own = (r: BuildCacheRecord) => (r.shared ? 0 : r.size);
  let total = sumOf(records, own);
  const cut = policy.budgetCut?.everything ? 'none' : policy.budgetCut?.buildCache;
  const keep = typeof cut === 'number' ? Math.max(cut, policy.buildCacheKeep ?? 0) : policy.buildCacheKeep;
  // The grace period moves the cutoff: a record used within min-age stays (Docker's `until` is "unused for").
  const graceMs = policy.minAgeMs ?? 0;
  if (graceMs > 0) cutoffMs = Math.min(cutoffMs ?? Infinity, nowMs - graceMs);
  const eligible = records
    .filter((r) => !r.inUse && (cutoffMs === undefined || r.lastUsedMs <= cutoffMs))
    .sort((a, b) => a.lastUsedMs - b.lastUsedMs);
  let freed = 0;
  let candidates = 0;
  for (const record of cut === 'none' ? [] : eligible) {
    if (keep !== undefined && total <= keep) break;
    candidates++;
    freed += own(record);
    total -= own(record);
  }
  return {
    until: cutoffMs === undefined ? undefined : `${Math.max(0, Math.floor((nowMs - cutoffMs) / 1000))}s`,
    keepStorage: keep,
    records: records.length,
    candidates,
    estimatedBytes: freed,
    detail:
      `${candidates} of ${records.length} record(s)` +
      (cutoffMs === undefined ? '' : `, last used before ${new Date(cutoffMs).toISOString()}`) +
      (keep === undefined ? '' : `, keeping ${formatBytes(keep)} of the most recently used`) +
      (cut === 'none' ? ` (${BUDGET_MET})` : typeof cut === 'number' ? ' (as much as the budget needs)' : ''),
  };
}

/** What the image decisions look at besides the image itself: the graph, its users and the clocks. */
interface ImageContext {
  policy: Policy;
  cutoffMs: number | undefined;
  nowMs: number;
  /** Container names per image ID: any container, running, stopped or merely created, pins its image. */
  usedBy: Map<string, string[]>;
  /** Child image IDs per parent ID (classic store). */
  children: Map<string, string[]>;
  servedBy: Map<string, string>;
  /** keep-recent's rank detail per image ID. */
  recent: Map<string, string>;
  arrival: (image: ImageInfo) => Arrival;
}

type ImageVerdict = Omit<ImageDecision, 'image'>;
const keepImage = (reason: ImageDecision['reason'], detail: string): ImageVerdict => ({
  action: 'keep',
  reason,
  detail,
});

/** Images, with the containers that stay after this run. */
function planImages(
  images: ImageInfo[],
  containers: ContainerInfo[],
  policy: Policy,
  cutoffMs: number | undefined,
  nowMs: number,
  services: ServiceImage[] = [],
  engine: EngineDeletes = { noPruneHonoured: true },
) {
  const byId = new Map(images.map((image) => [image.id, image]));
  const arrival = (image: ImageInfo) => arrivalOf(image, policy.firstSeen, nowMs);
  const byUse = policy.keepRecentBy === 'used' ? (policy.lastUse ?? new Map<string, number>()) : undefined;
  const { ranks: recent, clocks } = newestPerRepository(images, policy.keepRecent, arrival, byUse);
  const context: ImageContext = {
    policy,
    cutoffMs,
    nowMs,
    usedBy: imageUsers(containers),
    children: childrenOf(images, byId),
    servedBy: serviceUsers(images, services),
    recent,
    arrival,
  };
  const runnerScope = (policy.runnerImages ?? 'unused') === 'unused';
  const decisions: ImageDecision[] = images.map((image) => ({
    image,
    ...decideImage(image, context),
    ...(runnerScope && isRunnerImage(image) ? { runnerImage: true } : {}),
  }));
  if (!engine.noPruneHonoured) keepAboveProtectedParents(decisions, byId, context);
  const { cascade, noPrune, untagOnly, goneIds } = settleParents(decisions, byId, context, engine);
  const gone = (image: ImageInfo) => goneIds.has(image.id);
  return {
    images: decisions,
    keepRecentClocks: clocks,
    cascade,
    noPrune,
    untagOnly,
    estimatedBytes: bytesFreed(
      images.filter(gone),
      images.filter((image) => !gone(image)),
    ),
    estimateExact: images.filter(gone).every((image) => image.layerSizesExact),
  };
}

function childrenOf(images: ImageInfo[], byId: Map<string, ImageInfo>): Map<string, string[]> {
  const children = new Map<string, string[]>();
  for (const image of images) {
    if (image.parentId && byId.has(image.parentId)) pushTo(children, image.parentId, image.id);
  }
  return children;
}

function imageUsers(containers: ContainerInfo[]): Map<string, string[]> {
  const usedBy = new Map<string, string[]>();
  for (const container of containers) pushTo(usedBy, container.imageId, nameOf(container));
  return usedBy;
}

/** One image's decision, in the order of the policy: users, protection, parents, runner images, scope, age. */
function decideImage(image: ImageInfo, context: ImageContext): ImageVerdict {
  const { policy, cutoffMs } = context;
  const users = context.usedBy.get(image.id);
  if (users) return keepImage('in-use', `used by container ${users.join(', ')}`);
  const service = context.servedBy.get(image.id);
  if (service) return keepImage('service', service);
  const rule = findProtection(policy.protect, image);
  if (rule) return keepImage('protected', `matches protect entry "${rule.entry}"`);
  // Untagged parents are not candidates of their own (Docker's prune skips them too); a tagged parent
  // is, and losing its tags is all that removing it can do while child images still need its layers.
  const kids = context.children.get(image.id);
  if (kids && image.repoTags.length === 0) {
    return keepImage(
      'parent',
      `untagged parent of ${kids.length} image(s); Docker removes it with its last child`,
    );
  }
  // Runner-built action images: one job each, so keep-recent does not apply, whatever `images` says.
  if ((policy.runnerImages ?? 'unused') === 'unused' && isRunnerImage(image))
    return decideRunnerImage(image, context);
  if (policy.images === 'none') return keepImage('not-selected', 'images is none');
  if (policy.images === 'dangling' && image.repoTags.length > 0) {
    return keepImage('tagged', 'only dangling images are candidates (images: dangling)');
  }
  const rank = context.recent.get(image.id);
  if (rank) return keepImage('keep-recent', rank);
  if (cutoffMs !== undefined && image.createdMs > cutoffMs) {
    return keepImage(
      'too-recent',
      `created after ${new Date(cutoffMs).toISOString()} (older-than ${policy.olderThan?.text})`,
    );
  }
  const grace = tooRecent(image, policy.minAgeMs, 'min-age', context);
  if (grace) return grace;
  if (policy.budgetCut?.everything || policy.budgetCut?.images.has(image.id)) {
    return keepImage('budget-met', BUDGET_MET);
  }
  return { action: 'remove', reason: 'remove', detail: removalDetail(policy.images, image) };
}

function decideRunnerImage(image: ImageInfo, context: ImageContext): ImageVerdict {
  const { policy, cutoffMs } = context;
  if (cutoffMs !== undefined && image.createdMs > cutoffMs) {
    return keepImage(
      'too-recent',
      `runner-built action image created after ${new Date(cutoffMs).toISOString()} (older-than ${policy.olderThan?.text})`,
    );
  }
  const grace = tooRecent(image, policy.runnerImagesMinAgeMs, 'runner-images-min-age', context);
  if (grace) return { ...grace, detail: `runner-built action image ${grace.detail}` };
  return { action: 'remove', reason: 'remove', detail: 'runner-built action image, unused' };
}

const ARRIVED_BY = {
  tagged: 'arrived (pulled, loaded, built or tagged)',
  'first-seen': 'first seen by this tool',
  created: 'created',
};

/** Kept by a grace period: the image arrived less than `graceMs` ago. */
function tooRecent(
  image: ImageInfo,
  graceMs: number | undefined,
  input: string,
  context: ImageContext,
): ImageVerdict | undefined {
  if (!graceMs || graceMs <= 0) return undefined;
  const arrived = context.arrival(image);
  if (arrived.ms <= context.nowMs - graceMs) return undefined;
  return keepImage(
    'too-recent',
    `${ARRIVED_BY[arrived.by]} ${ago(arrived.ms, context.nowMs)} (${input} ${durationText(graceMs)})`,
  );
}

/** How the engine's image delete treats parents. */
interface EngineDeletes {
  /**
   * Whether a delete's `noprune` keeps an untagged parent the child leaves childless. Podman's compatible
   * API ignores it (podman v4.3.1 and v5.8.2 compat/images_remove.go: "not supported") and deletes that
   * parent with its child, as libimage's removeRecursive does.
   */
  noPruneHonoured: boolean;
}

/**
 * Where `noprune` is not honoured (Podman), an image whose delete would take a protected untagged parent
 * with it stays: the engine's walk up from a deleted image goes on through untagged parents left without
 * children, none used by a container (the plan's cascade, computed here as if nothing were protected).
 * Asked again until no protected image is in that cascade, since a kept image keeps its parents' children.
 */
function keepAboveProtectedParents(
  decisions: ImageDecision[],
  byId: Map<string, ImageInfo>,
  context: ImageContext,
): void {
  const decisionOf = new Map(decisions.map((d) => [d.image.id, d]));
  const parentOf = (id: string) => byId.get(byId.get(id)?.parentId ?? '');
  for (;;) {
    const removed = decisions.filter((d) => d.action === 'remove').map((d) => d.image.id);
    const { cascade } = cascadeParents(new Set(removed), byId, context.children, context.usedBy, new Set());
    const cascaded = new Set(cascade);
    const hit = new Set(cascade.filter((id) => decisionOf.get(id)?.reason === 'protected'));
    if (hit.size === 0) return;
    for (const id of removed) {
      let p = parentOf(id);
      while (p && cascaded.has(p.id) && !hit.has(p.id)) p = parentOf(p.id);
      if (!p || !hit.has(p.id)) continue;
      Object.assign(decisionOf.get(id)!, {
        action: 'keep',
        reason: 'protected',
        detail: `its untagged parent ${p.id.slice(7, 19)} is protected, and Podman deletes an untagged parent with its last child`,
      });
    }
  }
}

/**
 * The parents' part: untagged parents Docker deletes with their last child go too, and a removed image
 * whose children stay loses only its tags. Updates the decisions to say so.
 */
function settleParents(
  decisions: ImageDecision[],
  byId: Map<string, ImageInfo>,
  context: ImageContext,
  engine: EngineDeletes,
) {
  const removed = new Set(decisions.filter((d) => d.action === 'remove').map((d) => d.image.id));
  // Without noprune the engine's cascade is its own: keepAboveProtectedParents kept it off protected images.
  const protectedIds = new Set(
    engine.noPruneHonoured ? decisions.filter((d) => d.reason === 'protected').map((d) => d.image.id) : [],
  );
  const { cascade, noPrune } = cascadeParents(removed, byId, context.children, context.usedBy, protectedIds);
  const goneIds = new Set([...removed, ...cascade]);
  const untagOnly = [...removed].filter((id) =>
    (context.children.get(id) ?? []).some((child) => !goneIds.has(child)),
  );
  const untagging = new Set(untagOnly);
  for (const decision of decisions) {
    if (goneIds.has(decision.image.id) && !removed.has(decision.image.id)) {
      decision.action = 'remove';
      decision.detail = 'untagged parent; Docker removes it with its last child';
    } else if (untagging.has(decision.image.id)) {
      decision.detail = `${decision.detail}; only its tags go: child images still need its layers`;
    }
  }
  return { cascade, noPrune, untagOnly, goneIds };
}

function removalDetail(scope: Policy['images'], image: ImageInfo): string {
  if (image.repoTags.length === 0) return 'dangling: untagged and unused';
  return scope === 'unused' ? 'unused: no container refers to it' : 'unused';
}

/**
 * Per repository (by tag or, for images pinned by digest, by digest), the `count` newest images, with a
 * detail saying where they rank, and the clock that ranked each repository. Images are ranked by creation
 * time, then by arrival on this host; where creation times say nothing (reproducible-build stamps, see
 * rankingClock) by arrival, then creation. Never by ID: images tied with the last one kept on both
 * clocks are kept too, since nothing tells which of them is newer. With `byUse` (`keep-recent-by: used`),
 * the images a container used most recently rank first, the never used after them by those clocks.
 */
function newestPerRepository(
  images: ImageInfo[],
  count: number,
  arrival: (image: ImageInfo) => { ms: number },
  byUse?: Map<string, number>,
): { ranks: Map<string, string>; clocks: Record<string, 'created' | 'arrival'> } {
  const ranks = new Map<string, string>();
  const clocks: Record<string, 'created' | 'arrival'> = {};
  if (count <= 0) return { ranks, clocks };
  const byRepository = new Map<string, ImageInfo[]>();
  for (const image of images) {
    const repositories = new Set([
      ...image.repoTags.map(repositoryOf),
      ...image.repoDigests.map((ref) => splitDigestReference(ref).name),
    ]);
    for (const repository of repositories) pushTo(byRepository, repository, image);
  }
  for (const [repository, members] of byRepository) {
    const clock = rankingClock(members);
    clocks[displayRepository(repository)] = clock;
    const keyOf = (image: ImageInfo): number[] => {
      const arrived = arrival(image).ms;
      const key = clock === 'created' ? [image.createdMs, arrived] : [arrived, image.createdMs];
      return byUse ? [byUse.get(image.id) ?? 0, ...key] : key;
    };
    const keyed = members.map((image) => ({ image, key: keyOf(image) }));
    const order = (a: number[], b: number[]) => b.reduce((d, x, i) => d || x - a[i], 0);
    keyed.sort((a, b) => order(a.key, b.key));
    const last = keyed[Math.min(count, keyed.length) - 1].key;
    const by = byUse
      ? `by last use by a container, then ${clock === 'created' ? 'creation' : 'arrival'}`
      : clock === 'created'
        ? 'by creation, then arrival'
        : 'by arrival on this host: their creation times are all alike or before 2000';
    keyed.forEach(({ image, key }, i) => {
      const tied = i >= count && order(key, last) === 0;
      if ((i < count || tied) && !ranks.has(image.id)) {
        const what = byUse && (byUse.get(image.id) ?? 0) > 0 ? 'most recently used' : 'newest';
        ranks.set(
          image.id,
          `#${tied ? count : i + 1} ${what} of ${displayRepository(repository)} (keep-recent ${count}, ${by}${tied ? ', tied' : ''})`,
        );
      }
    });
  }
  return { ranks, clocks };
}

/**
 * Images a swarm service names, by its current spec or its previous one (what a rollback returns to):
 * matched by ID, by digest (`name@sha256:…` against RepoDigests, or the ID on the containerd store,
 * where an image's ID is its manifest's digest) and by tag (`name[:tag]`, `latest` when none).
 */
function serviceUsers(images: ImageInfo[], services: ServiceImage[]): Map<string, string> {
  const users = new Map<string, string>();
  for (const service of services) {
    const at = service.image.indexOf('@');
    const digest = at >= 0 ? service.image.slice(at + 1) : undefined;
    const named = at >= 0 ? service.image.slice(0, at) : service.image;
    const { name, tag = 'latest' } = splitReference(named);
    const bare = named.replace(/^sha256:/, '');
    for (const image of images) {
      const matches =
        image.id === service.image ||
        (/^[0-9a-f]{12,64}$/.test(bare) && image.id.startsWith(`sha256:${bare}`)) ||
        (digest !== undefined &&
          (image.id === digest ||
            image.repoDigests.some((ref) => {
              const d = splitDigestReference(ref);
              return d.digest === digest && d.name === name;
            }))) ||
        (digest === undefined &&
          image.repoTags.some((ref) => {
            const r = splitReference(ref);
            return r.name === name && r.tag === tag;
          }));
      if (matches && !users.has(image.id)) {
        users.set(
          image.id,
          `named by swarm service ${service.service}${service.previous ? "'s previous spec (its rollback)" : ''}`,
        );
      }
    }
  }
  return users;
}

/**
 * Untagged parents that Docker deletes along with a child: when every child goes, no container uses
 * it and it has no references, the delete walks up to it (and on up the chain). Docker knows nothing
 * of our protection, so an image with a protected ancestor is deleted with `noprune` instead.
 */
function cascadeParents(
  removed: Set<string>,
  byId: Map<string, ImageInfo>,
  children: Map<string, string[]>,
  usedBy: Map<string, string[]>,
  protectedIds: Set<string>,
): { cascade: string[]; noPrune: string[] } {
  const parentOf = (id: string) => byId.get(byId.get(id)?.parentId ?? '');
  const hasProtectedAncestor = (id: string) => {
    for (let p = parentOf(id); p; p = parentOf(p.id)) if (protectedIds.has(p.id)) return true;
    return false;
  };
  const noPrune = [...removed].filter(hasProtectedAncestor);
  const kept = new Set(noPrune);
  const gone = new Set(removed);
  const cascade: string[] = [];
  let frontier = [...removed].filter((id) => !kept.has(id));
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const id of frontier) {
      const parent = parentOf(id);
      if (!parent || gone.has(parent.id) || usedBy.has(parent.id)) continue;
      if (parent.repoTags.length > 0 || parent.repoDigests.length > 0) continue;
      if (!(children.get(parent.id) ?? []).every((child) => gone.has(child))) continue;
      gone.add(parent.id);
      cascade.push(parent.id);
      next.push(parent.id);
    }
    frontier = next;
  }
  return { cascade, noPrune };
}
