// Figures: the totals of a run, the estimate's range, the measured bytes and which figure to trust, and the
// runner-built images' totals.

import type { ObjectDecision, Plan } from '../types';
import type { RunFacts } from './facts';
import { formatBytes } from './format';
import { isGoing, objectRows, type FinalState, type ImageRow } from './rows';
import { sumOf } from '../collections';

export interface Totals {
  /** Image IDs removed (prune) or that would be removed (report). */
  removed: number;
  /** Parent images whose tags were removed while child images keep them. */
  untagged: number;
  kept: number;
  gone: number;
  failed: number;
  removedContainers: number;
  removedNetworks: number;
  removedVolumes: number;
  /** Build cache bytes: freed (prune, as the daemon reports) or that would be freed (report). */
  buildCacheBytes: number;
  estimatedBytes: number;
  /**
   * The whole plan's estimate as a range: what is certainly freed and what at most is. Both equal
   * `estimatedBytes` when the engine allows an exact figure; on the containerd store without a readable
   * content store the low end is `estimatedBytes`.
   */
  estimatedBytesLow: number;
  estimatedBytesHigh: number;
  /** Prune: measured from the daemon's totals before and after; 0 in report mode or when unknown. */
  reclaimedBytes: number;
}

/** Measured bytes freed: the daemon's totals before minus after, over the classes this run cleans. */
export function measuredBytes(facts: RunFacts): number | undefined {
  const after = facts.usageAfter;
  if (!after) return undefined;
  return sumOf(facts.measured, (key) => facts.usageBefore[key] - after[key]);
}

/**
 * The whole plan's estimate as a range: the other classes (containers, volumes, build cache) as they are,
 * plus the image bytes' bounds where the method gives bounds; otherwise both ends are the estimate.
 */
export function estimateRange(plan: Pick<Plan, 'estimate' | 'estimateMethod'>): {
  low: number;
  high: number;
} {
  const { estimate, estimateMethod } = plan;
  const others = estimate.total - estimate.images;
  return {
    low: others + (estimateMethod.low ?? estimate.images),
    high: others + (estimateMethod.high ?? estimate.images),
  };
}

/** Whether the estimate is a range rather than one figure. */
export const isBounded = (range: { low: number; high: number }) => range.low !== range.high;

/**
 * One sentence on which figure to trust when the estimate is a range: after a prune the measured figure
 * (the daemon's own totals); before one, the low end is what is certainly freed and the high end the most.
 */
export function figureToTrust(range: { low: number; high: number }, measured: number | undefined): string {
  const between = `between ${formatBytes(range.low)} and ${formatBytes(range.high)}`;
  return measured === undefined
    ? `Which figure to trust: ${formatBytes(range.low)} is certainly freed and ${formatBytes(range.high)} at most; a prune measures what it frees.`
    : `Which figure to trust: the measured ${formatBytes(measured)}, what the prune freed by Docker’s own totals; the estimate could only say ${between}.`;
}

export function totalsOf(facts: RunFacts, rows: ImageRow[]): Totals {
  const count = (...states: FinalState[]) => rows.filter((r) => states.includes(r.state)).length;
  const objects = objectRows(facts.plan, facts.objectResults);
  const removedOf = (kind: ObjectDecision['kind']) =>
    objects.filter((o) => o.decision.kind === kind && (o.state === 'removed' || o.state === 'would-remove'))
      .length;
  const untagOnly = new Set(facts.plan.untagOnly);
  return {
    removed: facts.results
      ? count('removed')
      : rows.filter((r) => r.state === 'would-remove' && !untagOnly.has(r.image.id)).length,
    untagged: facts.results ? count('untagged') : rows.filter((r) => untagOnly.has(r.image.id)).length,
    kept: count('kept'),
    gone: count('gone'),
    failed: count('failed'),
    removedContainers: removedOf('container'),
    removedNetworks: removedOf('network'),
    removedVolumes: removedOf('volume'),
    buildCacheBytes:
      facts.buildCacheResult?.reclaimedBytes ??
      (facts.results ? 0 : (facts.plan.buildCache?.estimatedBytes ?? 0)),
    estimatedBytes: facts.plan.estimate.total,
    estimatedBytesLow: estimateRange(facts.plan).low,
    estimatedBytesHigh: estimateRange(facts.plan).high,
    reclaimedBytes: measuredBytes(facts) ?? 0,
  };
}

/**
 * Runner-built action images removed (or that would be), and the layer bytes they alone free (the plan's
 * estimate; the measured figure covers every class).
 */
export function runnerImageTotals(
  facts: RunFacts,
  rows: ImageRow[],
): { count: number; estimatedBytes: number } {
  const count = rows.filter((r) => r.runnerImage && isGoing(r)).length;
  return { count, estimatedBytes: facts.plan.runnerImages?.bytes ?? 0 };
}

/** `runner-built action images: 3, 1.20 MB`, when the run removes (or would remove) any. */
export function runnerImagesLine(facts: RunFacts, rows: ImageRow[]): string | undefined {
  const { count, estimatedBytes } = runnerImageTotals(facts, rows);
  return count > 0 ? `runner-built action images: ${count}, ${formatBytes(estimatedBytes)}` : undefined;
}
