// Telling, as pure functions: what happened to each image, the JSON report, the annotations.

import type { GateResult } from '../types';
import { INPUT_SPECS } from '../policy/inputs';
import { displayRepository, repositoryOf } from '../policy/protect';
import type {
  BudgetPlan,
  BuildCacheResult,
  DataRootDisk,
  DiskPlace,
  EngineInfo,
  ImageDecision,
  ImageInfo,
  ImageReason,
  Mode,
  ObjectDecision,
  ObjectResult,
  Plan,
  RemovalResult,
  Usage,
} from '../types';
import { pushTo } from '../collections';
import { neutralise } from '../text';

/** `untagged`: a parent image lost its tags but stays for the child images built on it. */
export type FinalState = 'removed' | 'untagged' | 'would-remove' | 'kept' | 'gone' | 'failed';

export interface ImageRow {
  image: ImageInfo;
  state: FinalState;
  reason: ImageReason;
  detail: string;
  /** What the daemon said, for conflicts and failures. */
  message?: string;
  /** A runner-built action image (a class of its own). */
  runnerImage?: boolean;
}

export interface RunFacts {
  plan: Plan;
  /** Undefined in report mode. */
  results?: RemovalResult[];
  objectResults?: ObjectResult[];
  buildCacheResult?: BuildCacheResult;
  host: string;
  engine: EngineInfo;
  nowMs: number;
  usageBefore: Usage;
  /** Prune mode: the daemon's totals after the removals (undefined if it did not answer). */
  usageAfter?: Usage;
  /** The classes whose totals make up the measured figure. */
  measured: (keyof Usage)[];
  /** Free bytes of the disk holding Docker's data; undefined when unknown (a remote daemon). */
  diskFreeBefore?: number;
  diskFreeAfter?: number;
  /** Free inodes of that filesystem; undefined when unknown. */
  inodesFreeBefore?: number;
  inodesFreeAfter?: number;
  /** The path those figures measure, what it holds and why (undefined when nothing could be measured). */
  diskPlace?: DiskPlace;
  /** The data root's figures when the measured path is on another filesystem (the containerd store's root). */
  dataRootDisk?: DataRootDisk;
  timings: Record<string, number>;
  warnings: string[];
  gates?: GateReport;
  /** Why the step fails, if it does. */
  failures?: string[];
}

export interface GateReport {
  before: GateResult[];
  after?: GateResult[];
}

/** Each image's final state: the plan's decision combined with what the daemon answered. */
export function imageRows(plan: Plan, results?: RemovalResult[]): ImageRow[] {
  const byId = new Map((results ?? []).map((r) => [r.id, r]));
  const deleted = new Set((results ?? []).flatMap((r) => r.deleted));
  const cascade = new Set(plan.cascade);
  return plan.images.map((d: ImageDecision): ImageRow => {
    const row = {
      image: d.image,
      reason: d.reason,
      detail: d.detail,
      ...(d.runnerImage ? { runnerImage: true } : {}),
    };
    if (d.action === 'keep') return { ...row, state: 'kept' };
    if (!results) return { ...row, state: 'would-remove' };
    if (cascade.has(d.image.id)) {
      return deleted.has(d.image.id)
        ? { ...row, state: 'removed' }
        : {
            ...row,
            state: 'kept',
            detail: 'untagged parent that Docker kept (another child or reference remains)',
          };
    }
    const result = byId.get(d.image.id);
    switch (result?.status) {
      case 'removed':
        return { ...row, state: 'removed' };
      case 'untagged':
        return { ...row, state: 'untagged' };
      case 'gone':
        return { ...row, state: 'gone', message: result.message };
      case 'conflict':
        // A container (or a reference) appeared since the plan: the daemon refused, the image stays.
        return {
          ...row,
          state: 'kept',
          reason: 'in-use',
          detail: 'in use since the plan',
          message: result.message,
        };
      case 'error':
        return { ...row, state: 'failed', message: result.message };
      default:
        return { ...row, state: 'failed', message: 'not attempted' };
    }
  });
}

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

export interface ObjectRow {
  decision: ObjectDecision;
  state: FinalState;
  message?: string;
}

/** Each container, network and volume: its decision combined with what the daemon answered. */
export function objectRows(plan: Plan, results?: ObjectResult[]): ObjectRow[] {
  const byKey = new Map((results ?? []).map((r) => [`${r.kind}/${r.id}`, r]));
  return plan.objects.map((decision): ObjectRow => {
    if (decision.action === 'keep') return { decision, state: 'kept' };
    if (!results) return { decision, state: 'would-remove' };
    const result = byKey.get(`${decision.kind}/${decision.id}`);
    switch (result?.status) {
      case 'removed':
        return { decision, state: 'removed' };
      case 'gone':
        return { decision, state: 'gone', message: result.message };
      case 'conflict':
        return { decision: { ...decision, reason: 'in-use' }, state: 'kept', message: result.message };
      case 'error':
        return { decision, state: 'failed', message: result.message };
      default:
        return { decision, state: 'failed', message: 'not attempted' };
    }
  });
}

/** Measured bytes freed: the daemon's totals before minus after, over the classes this run cleans. */
export function measuredBytes(facts: RunFacts): number | undefined {
  const after = facts.usageAfter;
  if (!after) return undefined;
  return facts.measured.reduce((n, key) => n + (facts.usageBefore[key] - after[key]), 0);
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

/** The JSON report: every object with its decision and reason, and the totals. */
export function buildReport(facts: RunFacts, rows: ImageRow[]) {
  return {
    version: 1,
    status: statusOf(facts.failures ?? []),
    mode: facts.plan.mode,
    generatedAt: new Date(facts.nowMs).toISOString(),
    daemon: {
      host: facts.host,
      engine: facts.engine.name,
      version: facts.engine.version,
      apiVersion: facts.engine.apiVersion,
      imageStore: facts.engine.imageStore,
      id: facts.engine.id,
      layersReadFrom: facts.engine.layersReadFrom,
    },
    totals: { ...totalsOf(facts, rows), estimateExact: facts.plan.estimateMethod.exact },
    estimate: facts.plan.estimate,
    estimateMethod: facts.plan.estimateMethod,
    measured: {
      classes: facts.measured,
      bytes: measuredBytes(facts) ?? null,
      before: facts.usageBefore,
      after: facts.usageAfter ?? null,
    },
    disk: {
      freeBefore: facts.diskFreeBefore ?? null,
      freeAfter: facts.diskFreeAfter ?? null,
      inodesFreeBefore: facts.inodesFreeBefore ?? null,
      inodesFreeAfter: facts.inodesFreeAfter ?? null,
      path: facts.diskPlace?.path ?? null,
      holds: facts.diskPlace?.holds ?? null,
      why: facts.diskPlace?.why ?? null,
      dataRoot: facts.dataRootDisk
        ? {
            path: facts.dataRootDisk.path,
            freeBefore: facts.dataRootDisk.freeBefore ?? null,
            freeAfter: facts.dataRootDisk.freeAfter ?? null,
            inodesFreeBefore: facts.dataRootDisk.inodesFreeBefore ?? null,
            inodesFreeAfter: facts.dataRootDisk.inodesFreeAfter ?? null,
          }
        : null,
    },
    runnerImages: runnerImageTotals(facts, rows),
    cutoff: facts.plan.cutoffMs === undefined ? null : new Date(facts.plan.cutoffMs).toISOString(),
    unmatchedProtect: facts.plan.unmatchedProtect,
    keepRecentClocks: facts.plan.keepRecentClocks ?? {},
    // Races with jobs in flight: images a delete removed beyond the plan, and tags put back after a 409.
    unplannedRemovals: (facts.results ?? []).flatMap((r) =>
      (r.unplanned ?? []).map((id) => ({ id, removedWith: r.id })),
    ),
    restoredTags: (facts.results ?? []).flatMap((r) =>
      r.restored?.length ? [{ id: r.id, tags: r.restored }] : [],
    ),
    warnings: facts.warnings,
    failures: facts.failures ?? [],
    gates: facts.gates ?? { before: [] },
    images: rows.map((r) => ({
      id: r.image.id,
      tags: r.image.repoTags,
      digests: r.image.repoDigests,
      class: r.runnerImage ? 'runner-image' : 'image',
      created: new Date(r.image.created * 1000).toISOString(),
      ...(r.image.lastTagMs ? { lastTagged: new Date(r.image.lastTagMs).toISOString() } : {}),
      size: r.image.size,
      labels: r.image.labels,
      state: r.state,
      reason: r.reason,
      detail: r.detail,
      ...(r.message ? { message: r.message } : {}),
    })),
    objects: objectRows(facts.plan, facts.objectResults).map((o) => ({
      kind: o.decision.kind,
      id: o.decision.id,
      name: o.decision.name,
      size: o.decision.size,
      state: o.state,
      reason: o.decision.reason,
      detail: o.decision.detail,
      ...(o.message ? { message: o.message } : {}),
    })),
    buildCache: facts.plan.buildCache
      ? { ...facts.plan.buildCache, result: facts.buildCacheResult ?? null }
      : null,
    budget: facts.plan.budget ?? null,
    timings: facts.timings,
  };
}

/** `failed` when the run fails (the step fails, the command exits non-zero), else `ok`. */
export const statusOf = (failures: readonly string[]): 'ok' | 'failed' =>
  failures.length > 0 ? 'failed' : 'ok';

/** Why a run failed before its pass began: nothing was planned, nothing removed. */
export interface EarlyFailure {
  /**
   * `invalid-input`: an input (or DOCKER_HOST, DOCKER_CERT_PATH) is invalid; `daemon-unreachable`: no Docker
   * daemon answered; `inventory-failed`: the daemon answered but its inventory could not be taken (it
   * stopped answering, or failed the list), so nothing was planned.
   */
  kind: 'invalid-input' | 'daemon-unreachable' | 'inventory-failed';
  message: string;
  /** The input at fault, for `invalid-input`. */
  input?: string;
}

/** Inputs never written to a report or a summary: secrets. */
const SECRET_INPUTS: ReadonlySet<string> = new Set(['github-token']);
/** Characters of one input's value kept in a failure report (a list input can be long). */
const MAX_INPUT_CHARS = 4096;

/**
 * The inputs as given (`get` reads one by name: the action's INPUT_* variables, the command's flags and
 * variables), each neutralised to one inert line and clipped; secrets left out. They are whatever the
 * workflow or the command line held, a hostile value included.
 */
export function givenInputs(get: (name: string) => string): Record<string, string> {
  const given: Record<string, string> = {};
  for (const { name } of INPUT_SPECS) {
    if (SECRET_INPUTS.has(name)) continue;
    const value = neutralise(get(name));
    given[name] =
      value.length > MAX_INPUT_CHARS
        ? `${value.slice(0, MAX_INPUT_CHARS)}… (${value.length - MAX_INPUT_CHARS} more characters)`
        : value;
  }
  return given;
}

/** Every count of Totals, zero: what a run that did nothing did. */
const ZERO_TOTALS: Totals = {
  removed: 0,
  untagged: 0,
  kept: 0,
  gone: 0,
  failed: 0,
  removedContainers: 0,
  removedNetworks: 0,
  removedVolumes: 0,
  buildCacheBytes: 0,
  estimatedBytes: 0,
  estimatedBytesLow: 0,
  estimatedBytesHigh: 0,
  reclaimedBytes: 0,
};

/**
 * The JSON report of a run that failed before its pass began, in the report's own shape where it has
 * one: `status: failed`, the error (neutralised), the inputs as given, every count zero, no objects. `mode`
 * is null when the mode input itself is not a mode.
 */
export function buildFailureReport(run: {
  failure: EarlyFailure;
  inputs: Record<string, string>;
  nowMs: number;
}) {
  const message = neutralise(run.failure.message);
  const mode = (run.inputs.mode ?? '').trim() || 'report';
  return {
    version: 1,
    status: 'failed' as const,
    mode: mode === 'report' || mode === 'prune' ? (mode as Mode) : null,
    generatedAt: new Date(run.nowMs).toISOString(),
    error: { kind: run.failure.kind, message, input: run.failure.input ?? null },
    inputs: run.inputs,
    totals: { ...ZERO_TOTALS },
    warnings: [] as string[],
    failures: [message],
    gates: { before: [] as GateResult[] },
    images: [] as unknown[],
    objects: [] as unknown[],
    timings: {} as Record<string, number>,
  };
}

export type FailureReport = ReturnType<typeof buildFailureReport>;

/**
 * Runner-built action images removed (or that would be), and the layer bytes they alone free (the plan's
 * estimate; the measured figure covers every class).
 */
export function runnerImageTotals(
  facts: RunFacts,
  rows: ImageRow[],
): { count: number; estimatedBytes: number } {
  const count = rows.filter(
    (r) => r.runnerImage && (r.state === 'removed' || r.state === 'would-remove' || r.state === 'untagged'),
  ).length;
  return { count, estimatedBytes: facts.plan.runnerImages?.bytes ?? 0 };
}

/** `runner-built action images: 3, 1.20 MB`, when the run removes (or would remove) any. */
export function runnerImagesLine(facts: RunFacts, rows: ImageRow[]): string | undefined {
  const { count, estimatedBytes } = runnerImageTotals(facts, rows);
  return count > 0 ? `runner-built action images: ${count}, ${formatBytes(estimatedBytes)}` : undefined;
}

/** Repository an image is listed under: that of its first tag as people write it, or `<untagged>`. */
export function repositoryKey(image: ImageInfo): string {
  if (image.repoTags.length === 0) return '<untagged>';
  return displayRepository(repositoryOf(image.repoTags[0]));
}

export function groupByRepository(rows: ImageRow[]): [string, ImageRow[]][] {
  const groups = new Map<string, ImageRow[]>();
  for (const row of rows) {
    const key = repositoryKey(row.image);
    pushTo(groups, key, row);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b));
}

export interface Annotation {
  title: string;
  message: string;
}

/**
 * The runner keeps 4,096 characters of an annotation's message and GitHub 255 of its title; a longer
 * list ends with how many more there are.
 */
const ANNOTATION_MESSAGE = 4000;
const ANNOTATION_TITLE = 255;
/** Tags of one image named in a notice. */
const ANNOTATION_TAGS = 3;

/** `items` joined by `, ` up to `limit` characters (with `tail` after), then how many more. */
function joinWithin(items: string[], tail: string, limit: number, noun: string): string {
  const shown: string[] = [];
  let length = tail.length;
  for (const [i, item] of items.entries()) {
    const more = `… and ${items.length - i} more ${noun} (see the JSON report)`;
    // Room for this item, and for the line counting the rest should later items not fit.
    const need = length + (shown.length > 0 ? 2 : 0) + item.length;
    if (need + (i < items.length - 1 ? 2 + more.length : 0) > limit) {
      shown.push(more);
      break;
    }
    shown.push(item);
    length = need;
  }
  return shown.join(', ') + tail;
}

const clip = (text: string, limit: number) => (text.length > limit ? `${text.slice(0, limit - 1)}…` : text);

/** Notices for a pull request: one per repository, rolled up so that there are at most `limit`. */
export function removalAnnotations(rows: ImageRow[], limit = 10): Annotation[] {
  const groups = groupByRepository(rows.filter((r) => r.state === 'would-remove'))
    .map(([repository, members]) => ({
      repository,
      members,
      bytes: members.reduce((n, r) => n + r.image.size, 0),
    }))
    .sort((a, b) => b.bytes - a.bytes || a.repository.localeCompare(b.repository));
  const name = ({ image }: ImageRow) => {
    const tags = image.repoTags;
    if (tags.length === 0) return shortId(image.id);
    const more = tags.length > ANNOTATION_TAGS ? ` +${tags.length - ANNOTATION_TAGS} more tag(s)` : '';
    return neutralise(tags.slice(0, ANNOTATION_TAGS).join(' ')) + more;
  };
  const shown = groups.length > limit ? groups.slice(0, limit - 1) : groups;
  const notes = shown.map((g) => ({
    // Neutralised before clipping, so the shown forms count towards the limits.
    title: clip(`Would remove ${g.members.length} image(s) of ${neutralise(g.repository)}`, ANNOTATION_TITLE),
    message: joinWithin(
      g.members.map(name),
      ` (${formatBytes(g.bytes)} in Docker's image sizes)`,
      ANNOTATION_MESSAGE,
      'image(s)',
    ),
  }));
  const rest = groups.slice(shown.length);
  if (rest.length > 0) {
    const count = rest.reduce((n, g) => n + g.members.length, 0);
    notes.push({
      title: `Would remove ${count} more image(s) in ${rest.length} more repositories`,
      message: joinWithin(
        rest.map((g) => `${neutralise(g.repository)} (${g.members.length})`),
        '',
        ANNOTATION_MESSAGE,
        'repositories',
      ),
    });
  }
  return notes;
}

const STORE_NAMES: Record<EngineInfo['imageStore'], string> = {
  classic: 'classic image store',
  containerd: 'containerd image store',
  podman: 'containers/storage',
};

/** `Docker 28.5.2 (API 1.51, containerd image store)`. */
export function describeEngine(engine: EngineInfo): string {
  return `${engineName(engine)} ${engine.version} (API ${engine.apiVersion}, ${STORE_NAMES[engine.imageStore]})`;
}

/**
 * The run in three plain-text pieces, shared by the job summary, the command's table and the pull-request
 * comment: what was (or would be) done, the bytes, and the daemon with its disk.
 */
export function headline(facts: RunFacts, totals: Totals): { action: string; rest: string; daemon: string } {
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
  const what = [`${totals.removed} image(s)`, ...others].join(', ');
  const disk = (bytes: number | undefined) => (bytes === undefined ? 'unknown' : formatBytes(bytes));
  return {
    action: prune
      ? `Removed ${what}, reclaimed ${measured === undefined ? 'an unknown amount' : formatBytes(measured)}`
      : `Would remove ${what}, freeing ${estimate}`,
    rest:
      (prune ? `(estimated ${estimate}) · ` : '· ') +
      `kept ${totals.kept} image(s)` +
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

/** `Docker` or `Podman`, as people name the engine. */
export function engineName(engine: Pick<EngineInfo, 'name'>): string {
  return engine.name === 'podman' ? 'Podman' : 'Docker';
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** Decimal units, as Docker prints them. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

export function formatAge(createdSeconds: number, nowMs: number): string {
  const minutes = Math.max(0, Math.floor((nowMs / 1000 - createdSeconds) / 60));
  if (minutes < 60) return `${minutes}m`;
  if (minutes < 48 * 60) return `${Math.floor(minutes / 60)}h`;
  return `${Math.floor(minutes / 1440)}d`;
}

/**
 * The budget in plain lines, shared by the log, the command's table and the job summary: each target
 * against the state before (and after a prune), what must be freed, and where it is met or why not.
 */
export function budgetLines(b: BudgetPlan): string[] {
  const out: string[] = [];
  const after = b.after;
  const { freeSpace, freeInodes, maxUsage } = b.targets;
  const starts = b.starts ?? b.targets;
  const then = (now: string, later?: string) =>
    `${now} before${later === undefined ? '' : `, ${later} after`}`;
  // A watermark: the line that starts removal, beside the target where it stops.
  const startOf = (start: { text: string; figure?: string } | undefined, target: { text: string }) =>
    start && start.text !== target.text && start.figure !== undefined
      ? `, removal starts below ${start.figure} (${start.text})`
      : '';
  if (freeSpace) {
    out.push(
      freeSpace.bytes === undefined
        ? `free space ${freeSpace.text}: cannot be measured here`
        : `free space ≥ ${formatBytes(freeSpace.bytes)} (${freeSpace.text}` +
            startOf(
              starts.freeSpace && {
                text: starts.freeSpace.text,
                figure:
                  starts.freeSpace.bytes === undefined ? undefined : formatBytes(starts.freeSpace.bytes),
              },
              freeSpace,
            ) +
            '): ' +
            then(
              `${formatBytes(b.before.freeBytes ?? 0)} free`,
              after?.freeBytes === undefined ? undefined : formatBytes(after.freeBytes),
            ),
    );
  }
  if (freeInodes) {
    out.push(
      freeInodes.inodes === undefined
        ? `free inodes ${freeInodes.text}: cannot be measured here`
        : `free inodes ≥ ${freeInodes.inodes} (${freeInodes.text}` +
            startOf(
              starts.freeInodes && {
                text: starts.freeInodes.text,
                figure: starts.freeInodes.inodes === undefined ? undefined : String(starts.freeInodes.inodes),
              },
              freeInodes,
            ) +
            '): ' +
            then(
              `${b.before.freeInodes ?? 0} free`,
              after?.freeInodes === undefined ? undefined : String(after.freeInodes),
            ),
    );
  }
  if (maxUsage) {
    out.push(
      `daemon usage ≤ ${formatBytes(maxUsage.bytes)}` +
        (starts.maxUsage && starts.maxUsage.bytes !== maxUsage.bytes
          ? ` (removal starts above ${formatBytes(starts.maxUsage.bytes)})`
          : '') +
        ': ' +
        then(`${formatBytes(b.before.usage)} used`, after ? formatBytes(after.usage) : undefined),
    );
  }
  const total = b.steps.at(-1)?.runningTotal ?? 0;
  if (b.metAtStart) out.push('every budget line is met already: nothing is removed');
  else if (b.unmeasurable.length > 0 && b.steps.length === 0 && b.needBytes === 0) {
    out.push('no budget can be measured here: nothing is removed');
  } else {
    if (b.triggeredBy?.length) {
      out.push(`crossed: ${b.triggeredBy.join(', ')}; removing until every target is met`);
    }
    out.push(
      `to free: ${formatBytes(b.needBytes)}` +
        (b.needInodes ? ` and ${b.needInodes} inodes (measured during the prune, after each removal)` : ''),
    );
    if (b.metAfter !== undefined) {
      out.push(
        `met after removal ${b.metAfter} of ${b.steps.length} (running total ${formatBytes(total)}); ` +
          `${b.notNeeded} more candidate(s) kept: budget met`,
      );
    } else if (b.shortfallBytes > 0) {
      out.push(
        `cannot be met: every allowed removal (${b.steps.length}) frees ${formatBytes(total)}, ` +
          `${formatBytes(b.shortfallBytes)} short`,
      );
    } else if (b.needInodes) {
      out.push(`${b.steps.length} removal(s) at most, in order, stopping once the inodes are free`);
    }
    for (const h of b.holding) out.push(`held by ${h.kind} ${h.name}: ${formatBytes(h.bytes)}, ${h.reason}`);
  }
  if (b.metAfterPrune !== undefined) {
    out.push(
      b.metAfterPrune ? 'after the prune: every budget is met' : 'after the prune: the budget is NOT met',
    );
  }
  return out;
}

/** The budget's removals in order, as text cells: #, kind, name, last used, bytes, running total, met. */
export function budgetStepCells(b: BudgetPlan, nowMs: number): string[][] {
  return b.steps.map((step, i) => [
    String(i + 1),
    step.kind,
    step.name,
    step.lastUsedMs
      ? `${formatAge(step.lastUsedMs / 1000, nowMs)} ago`
      : step.kind === 'build-cache'
        ? ''
        : 'never',
    formatBytes(step.bytes),
    formatBytes(step.runningTotal),
    b.metAfter === i + 1 ? 'budget met' : '',
  ]);
}
