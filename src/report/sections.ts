// What the job summary, the command's table and the pull-request comment say, decided once: the headline
// and the sections, computed from the run's facts and rows; each renderer only renders them.

import { groupUniqueBytes } from '../policy/estimate';
import type { BuildCachePlan, BuildCacheResult } from '../types';
import { budgetLines, budgetStepCells } from './budget-lines';
import type { RunFacts } from './facts';
import {
  estimateRange,
  figureToTrust,
  isBounded,
  measuredBytes,
  runnerImagesLine,
  totalsOf,
  type Totals,
} from './figures';
import { describeEngine, formatBytes } from './format';
import { groupByRepository, isGoing, objectRows, type ImageRow, type ObjectRow } from './rows';

/** What the UNIQUE column means, said once under the images that go. */
export const UNIQUE_NOTE =
  'UNIQUE: bytes no other image shares, what removing that image alone frees; layers that only images going share are freed too, and counted in the total';

/** The run in three plain-text pieces: what was (or would be) done, the bytes, the daemon with its disk. */
export interface Headline {
  action: string;
  rest: string;
  daemon: string;
}

/**
 * The run in three plain-text pieces, shared by the job summary, the command's table and the pull-request
 * comment: what was (or would be) done, the bytes, and the daemon with its disk.
 */
export function headline(
  facts: RunFacts,
  totals: Totals,
  parents: { going: number; kept: number } = { going: 0, kept: 0 },
): Headline {
  const prune = facts.plan.mode === 'prune';
  const measured = measuredBytes(facts);
  const method = facts.plan.estimateMethod;
  const range = { low: totals.estimatedBytesLow, high: totals.estimatedBytesHigh };
  const estimate = isBounded(range)
    ? `${formatBytes(range.low)}–${formatBytes(range.high)}`
    : `${formatBytes(totals.estimatedBytes)}${method.exact ? '' : ' (approximate)'}`;
  const others = (
    [
      [totals.removedContainers, 'container(s)'],
      [totals.removedNetworks, 'network(s)'],
      [totals.removedVolumes, 'volume(s)'],
    ] as const
  )
    .filter(([n]) => n > 0)
    .map(([n, what]) => `${n} ${what}`);
  // Untagged parents going with their image are counted apart, as Docker's own prune counts images.
  const images = counted(totals.removed, parents.going);
  const what = [images, ...others].join(', ');
  const disk = (bytes: number | undefined) => (bytes === undefined ? 'unknown' : formatBytes(bytes));
  return {
    action: prune
      ? `Removed ${what}, reclaimed ${measured === undefined ? 'an unknown amount' : formatBytes(measured)}`
      : `Would remove ${what}, freeing ${estimate}`,
    rest:
      (prune ? `(estimated ${estimate}) · ` : '· ') +
      `kept ${counted(totals.kept, parents.kept)}` +
      (totals.failed > 0 ? ` · ${totals.failed} not removed` : ''),
    daemon:
      `${describeEngine(facts.engine)} · free disk ${disk(facts.diskFreeBefore)}` +
      (prune ? ` before, ${disk(facts.diskFreeAfter)} after` : '') +
      (facts.dataRootDisk
        ? ` (${facts.diskPlace?.holds === 'data-path' ? 'data-path' : 'containerd snapshots'} ${facts.diskPlace?.path})` +
          ` · data root ${facts.dataRootDisk.path} ${disk(facts.dataRootDisk.freeBefore)} free` +
          (prune ? ` before, ${disk(facts.dataRootDisk.freeAfter)} after` : '')
        : '') +
      (facts.plan.cutoffMs === undefined
        ? ''
        : ` · candidates created before ${new Date(facts.plan.cutoffMs).toISOString()}`),
  };
}

/** `4 image(s) (+2 untagged parent image(s))`: images, with the untagged parents among them apart. */
const counted = (all: number, parents: number) =>
  parents > 0 ? `${all - parents} image(s) (+${parents} untagged parent image(s))` : `${all} image(s)`;

/** The build cache as the summary and the table state it: what the plan prunes, and what came of it. */
export interface BuildCacheSection {
  plan: BuildCachePlan;
  result?: BuildCacheResult;
}

/**
 * What the job summary and the command's table show, decided once from the run's facts and rows; each
 * renders it in its own form (Markdown and HTML, plain text).
 */
export interface Sections {
  prune: boolean;
  /** `safe-docker-prune: prune`, or the report's title. */
  title: string;
  totals: Totals;
  head: Headline;
  /** The measured bytes freed, undefined in report mode or when the daemon did not answer after. */
  measured: number | undefined;
  /** The estimate's range: low and high equal when it is one figure. */
  range: { low: number; high: number };
  /** Which figure to trust, when the estimate is a range. */
  trust?: string;
  /** The runner-built action images line, when the run removes (or would remove) any. */
  runner?: string;
  /** With a budget: its lines, and its removals in order as cells (none when it removes nothing). */
  budget?: { lines: string[]; steps: string[][] };
  /**
   * Images that go (removed, untagged, would be removed), in the plan's order; the untagged parents that go
   * with an image are folded into its row (its detail says how many; its unique bytes are theirs together).
   */
  removed: ImageRow[];
  /** The same, grouped by repository (repositories in order), each with its repository. */
  removedByRepository: (readonly [string, ImageRow])[];
  /** Every other image: kept, gone, failed; untagged parents kept for an image folded into its row. */
  others: ImageRow[];
  /** Images the daemon failed to remove. */
  failed: ImageRow[];
  /** Containers, networks and volumes of the classes this run cleans. */
  objects: ObjectRow[];
  buildCache?: BuildCacheSection;
}

/** The sections of a run, for the summary and the table. */
export function sectionsOf(facts: RunFacts, rows: ImageRow[]): Sections {
  const totals = totalsOf(facts, rows);
  const prune = facts.plan.mode === 'prune';
  const measured = measuredBytes(facts);
  const range = estimateRange(facts.plan);
  const budget = facts.plan.budget;
  const { folded: removed, parents } = foldParents(rows.filter(isGoing), rows);
  const { folded: others, parents: keptParents } = foldParents(
    rows.filter((r) => !isGoing(r)),
    rows,
  );
  return {
    prune,
    title: `safe-docker-prune: ${prune ? 'prune' : 'report (nothing was removed)'}`,
    totals,
    head: headline(facts, totals, { going: parents, kept: keptParents }),
    measured,
    range,
    ...(isBounded(range) ? { trust: figureToTrust(range, prune ? measured : undefined) } : {}),
    runner: runnerImagesLine(facts, rows),
    ...(budget
      ? { budget: { lines: budgetLines(budget), steps: budgetStepCells(budget, facts.nowMs) } }
      : {}),
    removed,
    removedByRepository: groupByRepository(removed).flatMap(([repository, members]) =>
      members.map((r) => [repository, r] as const),
    ),
    others,
    failed: rows.filter((r) => r.state === 'failed'),
    objects: objectRows(facts.plan, facts.objectResults).filter((r) => r.decision.reason !== 'not-selected'),
    ...(facts.plan.buildCache
      ? { buildCache: { plan: facts.plan.buildCache, result: facts.buildCacheResult } }
      : {}),
  };
}

/**
 * Folds each untagged parent in `list` (the images that go, or the others) into the row of the nearest
 * image below it in the same list that is there for a reason of its own: Docker deletes such a parent
 * with its last child, and keeps it while one stays. Parents with no such image keep their rows. Returns
 * the rows in order and how many parents were folded.
 */
function foldParents(list: ImageRow[], all: ImageRow[]): { folded: ImageRow[]; parents: number } {
  const byId = new Map(all.map((r) => [r.image.id, r]));
  const listed = new Set(list.map((r) => r.image.id));
  const isParent = (r: ImageRow) => r.reason === 'parent';
  const folded = new Set<string>();
  const families = new Map<string, ImageRow[]>();
  for (const r of list) {
    if (isParent(r)) continue;
    const family = [r];
    for (let p = byId.get(r.image.parentId); p; p = byId.get(p.image.parentId)) {
      if (!listed.has(p.image.id) || !isParent(p) || folded.has(p.image.id)) break;
      folded.add(p.image.id);
      family.push(p);
    }
    if (family.length > 1) families.set(r.image.id, family);
  }
  if (families.size === 0) return { folded: list, parents: 0 };
  const groups = [...families.values()];
  const bytes = groupUniqueBytes(
    all.map((r) => r.image),
    groups.map((family) => family.map((r) => r.image)),
  );
  const unique = new Map(groups.map((family, i) => [family[0].image.id, bytes[i]]));
  const rows = list
    .filter((r) => !folded.has(r.image.id))
    .map((r) => {
      const family = families.get(r.image.id);
      if (!family) return r;
      const n = family.length - 1;
      return {
        ...r,
        detail: `${r.detail}; +${n} untagged parent image${n === 1 ? '' : 's'} with it`,
        uniqueBytes: unique.get(r.image.id) ?? r.uniqueBytes,
      };
    });
  return { folded: rows, parents: folded.size };
}

/**
 * The build cache in one sentence, `escape` applied to the daemon's and the plan's text: what the plan
 * prunes, its estimate, and what the daemon freed or why it did not prune.
 */
export function buildCacheSentence(
  { plan, result }: BuildCacheSection,
  escape: (text: string) => string,
): string {
  return (
    `${escape(plan.detail)}; estimated ${formatBytes(plan.estimatedBytes)}` +
    (result
      ? result.status === 'removed'
        ? `, the daemon freed ${formatBytes(result.reclaimedBytes)}`
        : `, not pruned (${escape(result.message ?? result.status)})`
      : '')
  );
}
