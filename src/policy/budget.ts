// The budget, as pure functions: how much must be freed to meet `free-space`, `free-inodes` and
// `max-usage`, in what order candidates go (stopped containers oldest finished first, then build cache
// least recently used first, then dangling and then tagged images least recently used first), and where
// to stop. The candidates are today's plan's removals; a budget only ever keeps some of them.
//
// Where to stop is decided by the exact bytes each removal frees given the ones before it (the layer
// graph of estimate.ts), so the report lists exactly what a prune removes. Inodes cannot be estimated
// from the API: an inode budget is measured on the filesystem during the prune, after each removal.

import { bytesFreed, chainKeys, uniqueBytes } from './estimate';
import { nameOf, planBuildCache, planRemovals, type BudgetCut, type Policy } from './plan';
import { sumOf } from '../collections';
import type {
  BudgetLines,
  BudgetPlan,
  BudgetState,
  BudgetStep,
  ContainerInfo,
  ImageDecision,
  ImageInfo,
  Inputs,
  Inventory,
  Plan,
  Target,
} from '../types';

export type BudgetPolicy = Policy &
  Partial<
    Pick<
      Inputs,
      'freeSpace' | 'freeInodes' | 'maxUsage' | 'freeSpaceTarget' | 'freeInodesTarget' | 'maxUsageTarget'
    >
  >;

export function hasBudget(policy: Partial<Pick<Inputs, 'freeSpace' | 'freeInodes' | 'maxUsage'>>): boolean {
  return policy.freeSpace !== undefined || policy.freeInodes !== undefined || policy.maxUsage !== undefined;
}

/** What the budget is measured against now. */
export interface BudgetContext {
  /** The data root's filesystem, when it is visible from here. */
  disk?: { freeBytes: number; totalBytes: number; freeInodes: number; totalInodes: number };
  /** When each image was last used (see lastUsedTimes in usage.ts); unknown images count as never. */
  lastUsed: Map<string, number>;
  /** A prune that stopped early (its measurement met the budget): only this many steps were done. */
  stepsDone?: number;
}

/** What the daemon uses for the classes a budget can free: image layers, containers, build cache. */
export function daemonUsage(inventory: Pick<Inventory, 'usage'>): number {
  return inventory.usage.layers + inventory.usage.containers + inventory.usage.buildCache;
}

/**
 * The plan under a budget: without one, planRemovals' plan. With one, the same candidates in budget
 * order, taken one at a time until every budget is met; the rest kept with reason budget-met.
 */
export function planWithBudget(
  inventory: Inventory,
  policy: BudgetPolicy,
  nowMs: number,
  ctx: BudgetContext,
): Plan {
  const base = planRemovals(inventory, policy, nowMs);
  if (!hasBudget(policy)) return base;

  const before: BudgetState = { ...ctx.disk, usage: daemonUsage(inventory) };
  const { starts, targets, triggeredBy, unmeasurable, needBytes, needInodes } = resolveTargets(
    policy,
    before,
  );
  const measurable =
    (targets.freeSpace?.bytes !== undefined ? 1 : 0) +
    (targets.freeInodes?.inodes !== undefined ? 1 : 0) +
    (targets.maxUsage ? 1 : 0);
  const metAtStart = measurable > 0 && triggeredBy.length === 0;

  const order = budgetOrder(inventory, base, policy, nowMs, ctx, needBytes);
  const steps: BudgetStep[] = [];
  let running = 0;
  const bytesMet = () => running >= needBytes;
  // With nothing measurable nothing is removed: a budget that cannot be checked never widens a prune.
  const done = () =>
    measurable === 0 ||
    (bytesMet() && !((needInodes ?? 0) > 0)) ||
    steps.length >= (ctx.stepsDone ?? Infinity);
  for (const candidate of order.candidates) {
    if (done()) break;
    const bytes = candidate.take();
    running += bytes;
    steps.push({ ...candidate.step, bytes, runningTotal: running, met: bytesMet() });
  }
  const taken = new Set(steps.map((s) => `${s.kind}/${s.id}`));
  const cacheStep = steps.find((s) => s.kind === 'build-cache');
  const cut: BudgetCut = {
    images: new Set(order.images.filter((id) => !taken.has(`image/${id}`))),
    containers: new Set(order.containers.filter((id) => !taken.has(`container/${id}`))),
    buildCache: cacheStep ? order.cacheKeep(cacheStep.bytes) : base.buildCache ? 'none' : undefined,
    everything: metAtStart || measurable === 0,
  };
  const plan = planRemovals(inventory, { ...policy, budgetCut: cut }, nowMs);

  const all = steps.length === order.candidates.length;
  const shortfallBytes = all && !bytesMet() ? needBytes - running : 0;
  const firstMet = steps.findIndex((s) => s.met);
  const budget: BudgetPlan = {
    targets,
    starts,
    triggeredBy,
    before,
    needBytes,
    needInodes,
    metAtStart,
    steps,
    notNeeded: order.candidates.length - steps.length,
    metAfter: metAtStart ? 0 : (needInodes ?? 0) > 0 || firstMet < 0 ? undefined : firstMet + 1,
    shortfallBytes,
    holding: all && (shortfallBytes > 0 || (needInodes ?? 0) > 0) ? holdingSpace(plan, inventory) : [],
    unmeasurable,
  };
  return { ...plan, budget };
}

/**
 * A free-space or free-inodes line and its target on a filesystem with `total` and `free` (bytes or
 * inodes); undefined when it cannot be measured there.
 */
function freeLine(start: Target, target: Target | undefined, total?: number, free?: number) {
  const of = (t: Target) => t.amount ?? (total ? Math.ceil(((t.percent ?? 0) / 100) * total) : undefined);
  const line = of(start);
  if (free === undefined || line === undefined) return undefined;
  // A target looser than its line (only possible across units, e.g. 10GB and 5%) stops at the line.
  const stop = Math.max(line, target ? (of(target) ?? 0) : 0);
  return { start: line, stop, crossed: free < line, need: stop - free };
}

/**
 * The budget's lines against the state before: the start lines (`free-space`, `free-inodes`,
 * `max-usage`), the targets where removal stops (the `*-target` inputs, else the start lines), which start
 * lines are crossed, and what must be freed. Watermarks as kubelet's: nothing is removed while every start
 * line is met; once one is crossed, removal goes on until every target is met.
 */
function resolveTargets(policy: BudgetPolicy, before: BudgetState) {
  const starts: BudgetLines = {};
  const targets: BudgetLines = {};
  const triggeredBy: string[] = [];
  const unmeasurable: string[] = [];
  const needs: number[] = [0];
  let needInodes: number | undefined;
  const notHere = (input: string) =>
    `${input}: the daemon's data root is not on a filesystem visible from here (a remote or dind daemon?), ` +
    'so it cannot be measured and removes nothing; use max-usage for such a daemon, or data-path';
  if (policy.freeSpace) {
    const line = freeLine(policy.freeSpace, policy.freeSpaceTarget, before.totalBytes, before.freeBytes);
    starts.freeSpace = { text: policy.freeSpace.text, bytes: line?.start };
    targets.freeSpace = { text: (policy.freeSpaceTarget ?? policy.freeSpace).text, bytes: line?.stop };
    if (!line) unmeasurable.push(notHere('free-space'));
    else {
      if (line.crossed) triggeredBy.push('free-space');
      needs.push(line.need);
    }
  }
  if (policy.freeInodes) {
    const line = freeLine(policy.freeInodes, policy.freeInodesTarget, before.totalInodes, before.freeInodes);
    starts.freeInodes = { text: policy.freeInodes.text, inodes: line?.start };
    targets.freeInodes = { text: (policy.freeInodesTarget ?? policy.freeInodes).text, inodes: line?.stop };
    if (!line) unmeasurable.push(notHere('free-inodes'));
    else {
      if (line.crossed) triggeredBy.push('free-inodes');
      needInodes = Math.max(0, line.need);
    }
  }
  if (policy.maxUsage !== undefined) {
    const stop = Math.min(policy.maxUsage, policy.maxUsageTarget ?? policy.maxUsage);
    starts.maxUsage = { text: String(policy.maxUsage), bytes: policy.maxUsage };
    targets.maxUsage = { text: String(stop), bytes: stop };
    if (before.usage > policy.maxUsage) triggeredBy.push('max-usage');
    needs.push(before.usage - stop);
  }
  // Every start line met: nothing to free, whatever the targets say.
  if (triggeredBy.length === 0)
    return {
      starts,
      targets,
      triggeredBy,
      unmeasurable,
      needBytes: 0,
      needInodes: needInodes === undefined ? undefined : 0,
    };
  return { starts, targets, triggeredBy, unmeasurable, needBytes: Math.max(...needs), needInodes };
}

interface Candidate {
  step: Omit<BudgetStep, 'bytes' | 'runningTotal' | 'met'>;
  /** Takes this candidate: the bytes it frees given every candidate taken before it. */
  take(): number;
}

const imageName = (image: ImageInfo) =>
  image.repoTags.length > 0 ? image.repoTags.join(' ') : image.id.replace(/^sha256:/, '').slice(0, 12);

/** Containers' finish (else creation) time, for "oldest finished first". */
const finishedOf = (c: ContainerInfo) => (c.finishedMs ? c.finishedMs : c.createdMs);

/**
 * The plan's removals in budget order, each with a take() that frees its marginal bytes: stopped
 * containers (oldest finished first), the build cache (one size-targeted prune), images (dangling first,
 * then tagged; each least recently used first, ties by creation time, oldest first).
 */
export function budgetOrder(
  inventory: Inventory,
  base: Plan,
  policy: Policy,
  nowMs: number,
  ctx: Pick<BudgetContext, 'lastUsed'>,
  needBytes: number,
) {
  const containersById = new Map(inventory.containers.map((c) => [c.id, c]));
  const containers = base.objects
    .filter((o) => o.kind === 'container' && o.action === 'remove')
    .map((o) => containersById.get(o.id))
    .filter((c): c is ContainerInfo => !!c)
    .sort((a, b) => finishedOf(a) - finishedOf(b) || a.id.localeCompare(b.id));

  const cascade = new Set(base.cascade);
  const images = orderImages(
    base.images.filter((d) => d.action === 'remove' && !cascade.has(d.image.id)),
    ctx.lastUsed,
  );

  const candidates: Candidate[] = [];
  let freed = 0;
  for (const c of containers) {
    candidates.push({
      step: { kind: 'container', id: c.id, name: nameOf(c), lastUsedMs: finishedOf(c) },
      take: () => {
        freed += c.sizeRw;
        return c.sizeRw;
      },
    });
  }

  // The build cache goes by one prune down to a size (keep-storage): as much of it, least recently used
  // first, as the budget still needs after the containers (all of it for an inode budget).
  const records = inventory.buildCache;
  const own = sumOf(records, (r) => (r.shared ? 0 : r.size));
  const cacheFreed = (keep: number) =>
    planBuildCache(records, { ...policy, budgetCut: cutKeeping(keep) }, base.cutoffMs, nowMs)
      ?.estimatedBytes ?? 0;
  if (base.buildCache && base.buildCache.candidates > 0 && base.buildCache.estimatedBytes > 0) {
    candidates.push({
      step: { kind: 'build-cache', id: 'build-cache', name: 'build cache (least recently used first)' },
      take: () => {
        const wanted = needBytes > freed ? needBytes - freed : own;
        const bytes = cacheFreed(Math.max(0, own - wanted));
        freed += bytes;
        return bytes;
      },
    });
  }

  const graph = layerGraph(inventory.images, cascade);
  for (const d of images) {
    candidates.push({
      step: {
        kind: 'image',
        id: d.image.id,
        name: imageName(d.image),
        lastUsedMs: ctx.lastUsed.get(d.image.id),
      },
      take: () => {
        const bytes = graph.remove(d.image.id);
        freed += bytes;
        return bytes;
      },
    });
  }
  return {
    candidates,
    images: images.map((d) => d.image.id),
    containers: containers.map((c) => c.id),
    /** The keep-storage of a build-cache step that frees `bytes`. */
    cacheKeep: (bytes: number) => Math.max(0, own - bytes),
  };
}

const cutKeeping = (keep: number): BudgetCut => ({
  images: new Set(),
  containers: new Set(),
  buildCache: keep,
  everything: false,
});

/**
 * Dangling images first, then tagged; each least recently used first, then oldest created, then by ID.
 * An image other candidates are built on (legacy builder parents) waits until its last candidate child
 * has gone: Docker refuses to delete an image with children.
 */
export function orderImages(decisions: ImageDecision[], lastUsed: Map<string, number>): ImageDecision[] {
  const rank = (d: ImageDecision) => (d.image.repoTags.length === 0 ? 0 : 1);
  const sorted = [...decisions].sort(
    (a, b) =>
      rank(a) - rank(b) ||
      (lastUsed.get(a.image.id) ?? 0) - (lastUsed.get(b.image.id) ?? 0) ||
      a.image.createdMs - b.image.createdMs ||
      (a.image.id < b.image.id ? -1 : a.image.id > b.image.id ? 1 : 0),
  );
  const ids = new Set(sorted.map((d) => d.image.id));
  const childrenLeft = new Map<string, number>();
  for (const d of sorted) {
    if (ids.has(d.image.parentId))
      childrenLeft.set(d.image.parentId, (childrenLeft.get(d.image.parentId) ?? 0) + 1);
  }
  const waiting = new Map<string, ImageDecision>();
  const out: ImageDecision[] = [];
  const emit = (d: ImageDecision) => {
    out.push(d);
    const parent = d.image.parentId;
    if (!childrenLeft.has(parent)) return;
    const left = childrenLeft.get(parent)! - 1;
    childrenLeft.set(parent, left);
    const ready = waiting.get(parent);
    if (left === 0 && ready) {
      waiting.delete(parent);
      emit(ready);
    }
  };
  for (const d of sorted) {
    if ((childrenLeft.get(d.image.id) ?? 0) > 0) waiting.set(d.image.id, d);
    else emit(d);
  }
  return out;
}

/**
 * The layer graph with reference counts, to remove images one at a time: each removal returns the bytes of
 * the layer chains and blobs no remaining image references (the same arithmetic as bytesFreed, marginal).
 * An untagged parent Docker deletes with its last child (the plan's cascade) goes with that child.
 */
export function layerGraph(images: ImageInfo[], cascade: ReadonlySet<string> = new Set()) {
  const refs = new Map<string, number>();
  const keysOf = new Map<string, { key: string; size: number }[]>();
  const byId = new Map(images.map((image) => [image.id, image]));
  const children = new Map<string, string[]>();
  for (const image of images) {
    const keys = chainKeys(image).map((key, i) => ({ key, size: image.layerSizes[i] ?? 0 }));
    for (const blob of image.blobs ?? []) keys.push({ key: `blob:${blob.key}`, size: blob.size });
    keysOf.set(image.id, keys);
    for (const { key } of keys) refs.set(key, (refs.get(key) ?? 0) + 1);
    if (image.parentId && byId.has(image.parentId)) {
      children.set(image.parentId, [...(children.get(image.parentId) ?? []), image.id]);
    }
  }
  const removed = new Set<string>();
  const drop = (id: string): number => {
    if (removed.has(id)) return 0;
    removed.add(id);
    let bytes = 0;
    for (const { key, size } of keysOf.get(id) ?? []) {
      const left = (refs.get(key) ?? 0) - 1;
      refs.set(key, left);
      if (left === 0) bytes += size;
    }
    return bytes;
  };
  return {
    remove(id: string): number {
      let bytes = drop(id);
      for (let p = byId.get(byId.get(id)?.parentId ?? ''); p; p = byId.get(p.parentId)) {
        if (!cascade.has(p.id) || removed.has(p.id)) break;
        if (!(children.get(p.id) ?? []).every((child) => removed.has(child))) break;
        bytes += drop(p.id);
      }
      return bytes;
    },
  };
}

/**
 * The largest objects the plan keeps (for any reason but budget-met), which hold the space the budget
 * lacks. Each byte counts once: an image holds its unique bytes, and the layers kept images share are one
 * entry of their own.
 */
function holdingSpace(plan: Plan, inventory: Inventory): BudgetPlan['holding'] {
  const held: BudgetPlan['holding'] = [];
  const unique = uniqueBytes(inventory.images);
  const kept = plan.images.filter((d) => d.action === 'keep' && d.reason !== 'budget-met');
  for (const d of kept.filter((k) => (unique.get(k.image.id) ?? 0) > 0)) {
    held.push({
      kind: 'image',
      name: imageName(d.image),
      bytes: unique.get(d.image.id) ?? 0,
      reason: `${d.reason}: ${d.detail}`,
    });
  }
  const keptImages = kept.map((d) => d.image);
  const shared = bytesFreed(keptImages, []) - sumOf(keptImages, (image) => unique.get(image.id) ?? 0);
  if (shared > 0) {
    held.push({ kind: 'image', name: 'layers kept images share', bytes: shared, reason: 'shared' });
  }
  for (const o of plan.objects) {
    if (o.action === 'keep' && o.reason !== 'budget-met' && o.size > 0) {
      held.push({ kind: o.kind, name: o.name, bytes: o.size, reason: `${o.reason}: ${o.detail}` });
    }
  }
  const inUse = sumOf(
    inventory.buildCache.filter((r) => r.inUse && !r.shared),
    (r) => r.size,
  );
  if (inUse > 0)
    held.push({ kind: 'build-cache', name: 'build cache in use', bytes: inUse, reason: 'in-use' });
  return held.sort((a, b) => b.bytes - a.bytes || a.name.localeCompare(b.name)).slice(0, 5);
}

/** Measured values during or after a prune (undefined where not measurable). */
export interface Measured {
  freeBytes?: number;
  freeInodes?: number;
  /** What the daemon uses now, when re-read. */
  usage?: number;
}

/**
 * Whether every measurable budget is met, given `freed` bytes removed so far (by the exact estimate) and
 * what the filesystem says now. Bytes count as met by either; inodes only by measurement.
 */
export function budgetMet(budget: BudgetPlan, freed: number, now: Measured = {}): boolean {
  const { freeSpace, freeInodes, maxUsage } = budget.targets;
  if (freeSpace?.bytes !== undefined) {
    const estimated = (budget.before.freeBytes ?? 0) + freed;
    if (!(estimated >= freeSpace.bytes || (now.freeBytes ?? -1) >= freeSpace.bytes)) return false;
  }
  if (freeInodes?.inodes !== undefined) {
    const free = now.freeInodes ?? budget.before.freeInodes ?? 0;
    if (free < freeInodes.inodes) return false;
  }
  if (maxUsage) {
    const usage = now.usage ?? budget.before.usage - freed;
    if (usage > maxUsage.bytes) return false;
  }
  return true;
}

/** After a prune: whether each budget is met by what was measured at the end. */
export function budgetMetAfter(budget: BudgetPlan, after: BudgetState): boolean {
  // Nothing crossed at the start: the start lines are what must still hold; else the targets.
  const { freeSpace, freeInodes, maxUsage } = budget.metAtStart ? budget.starts : budget.targets;
  if (freeSpace?.bytes !== undefined && (after.freeBytes ?? -1) < freeSpace.bytes) return false;
  if (freeInodes?.inodes !== undefined && (after.freeInodes ?? -1) < freeInodes.inodes) return false;
  if (maxUsage && after.usage > maxUsage.bytes) return false;
  return true;
}
