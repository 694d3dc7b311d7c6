// The JSON report, as pure functions: a run's (every object with its decision and reason, and the
// totals), and that of a run that failed before its pass began (the error and the inputs as given).

import { INPUT_SPECS } from '../policy/inputs';
import { neutralise } from '../text';
import type { GateResult, Mode } from '../types';
import type { RunFacts } from './facts';
import { measuredBytes, runnerImageTotals, totalsOf, type Totals } from './figures';
import { objectRows, type ImageRow, type ObjectRow } from './rows';

/** The JSON report: every object with its decision and reason, and the totals. */
export function buildReport(facts: RunFacts, rows: ImageRow[]) {
  return {
    version: 1,
    status: statusOf(facts.failures ?? []),
    mode: facts.plan.mode,
    generatedAt: new Date(facts.nowMs).toISOString(),
    daemon: daemonOf(facts),
    totals: { ...totalsOf(facts, rows), estimateExact: facts.plan.estimateMethod.exact },
    estimate: facts.plan.estimate,
    estimateMethod: facts.plan.estimateMethod,
    measured: {
      classes: facts.measured,
      bytes: measuredBytes(facts) ?? null,
      before: facts.usageBefore,
      after: facts.usageAfter ?? null,
    },
    disk: diskOf(facts),
    runnerImages: runnerImageTotals(facts, rows),
    cutoff: facts.plan.cutoffMs === undefined ? null : new Date(facts.plan.cutoffMs).toISOString(),
    unmatchedProtect: facts.plan.unmatchedProtect,
    keepRecentClocks: facts.plan.keepRecentClocks ?? {},
    ...racesOf(facts),
    warnings: facts.warnings,
    failures: facts.failures ?? [],
    gates: facts.gates ?? { before: [] },
    images: rows.map(imageEntry),
    objects: objectRows(facts.plan, facts.objectResults).map(objectEntry),
    buildCache: facts.plan.buildCache
      ? { ...facts.plan.buildCache, result: facts.buildCacheResult ?? null }
      : null,
    budget: facts.plan.budget ?? null,
    trend: trendOf(facts),
    timings: facts.timings,
  };
}

/** The report's `trend`: the disk forecast (null until the history has two runs) and the re-fetches. */
function trendOf({ trend }: RunFacts) {
  if (!trend) return null;
  const f = trend.forecast;
  return {
    forecast: f
      ? {
          samples: f.samples,
          spanSeconds: Math.round(f.spanMs / 1000),
          bytesPerHour: f.bytesPerHour,
          secondsToFull: f.msToFull === undefined ? null : Math.round(f.msToFull / 1000),
          inodesPerHour: f.inodesPerHour,
          secondsToInodesFull: f.msToInodesFull === undefined ? null : Math.round(f.msToInodesFull / 1000),
        }
      : null,
    refetched: {
      windowSeconds: trend.refetch.windowMs / 1000,
      count: trend.refetch.count,
      bytes: trend.refetch.bytes,
      foundThisRun: trend.refetch.newCount,
      recent: trend.refetch.recent.map((r) => ({
        id: r.id,
        tag: r.tag ?? null,
        bytes: r.bytes,
        removedAt: new Date(r.removedMs).toISOString(),
        seenAt: new Date(r.seenMs).toISOString(),
      })),
    },
  };
}

/** The report's `daemon`: where it is and what it is. */
function daemonOf({ host, engine }: RunFacts) {
  return {
    host,
    engine: engine.name,
    version: engine.version,
    apiVersion: engine.apiVersion,
    imageStore: engine.imageStore,
    id: engine.id,
    layersReadFrom: engine.layersReadFrom,
  };
}

/** The report's `disk`: free bytes and inodes before and after, the path measured, and the data root's. */
function diskOf(facts: RunFacts) {
  const root = facts.dataRootDisk;
  return {
    freeBefore: facts.diskFreeBefore ?? null,
    freeAfter: facts.diskFreeAfter ?? null,
    inodesFreeBefore: facts.inodesFreeBefore ?? null,
    inodesFreeAfter: facts.inodesFreeAfter ?? null,
    unaccounted: facts.unaccounted ?? null,
    path: facts.diskPlace?.path ?? null,
    holds: facts.diskPlace?.holds ?? null,
    why: facts.diskPlace?.why ?? null,
    dataRoot: root
      ? {
          path: root.path,
          freeBefore: root.freeBefore ?? null,
          freeAfter: root.freeAfter ?? null,
          inodesFreeBefore: root.inodesFreeBefore ?? null,
          inodesFreeAfter: root.inodesFreeAfter ?? null,
        }
      : null,
  };
}

/** Races with jobs in flight: images a delete removed beyond the plan, and tags put back after a 409. */
function racesOf(facts: RunFacts) {
  const results = facts.results ?? [];
  return {
    unplannedRemovals: results.flatMap((r) => (r.unplanned ?? []).map((id) => ({ id, removedWith: r.id }))),
    restoredTags: results.flatMap((r) => (r.restored?.length ? [{ id: r.id, tags: r.restored }] : [])),
  };
}

/** One image of the report: what it is, its final state and why. */
function imageEntry(r: ImageRow) {
  return {
    id: r.image.id,
    tags: r.image.repoTags,
    digests: r.image.repoDigests,
    class: r.runnerImage ? 'runner-image' : 'image',
    created: new Date(r.image.createdMs).toISOString(),
    ...(r.image.lastTagMs ? { lastTagged: new Date(r.image.lastTagMs).toISOString() } : {}),
    size: r.image.size,
    uniqueBytes: r.uniqueBytes,
    labels: r.image.labels,
    state: r.state,
    reason: r.reason,
    detail: r.detail,
    ...(r.message ? { message: r.message } : {}),
  };
}

/** One container, network or volume of the report: what it is, its final state and why. */
function objectEntry(o: ObjectRow) {
  return {
    kind: o.decision.kind,
    id: o.decision.id,
    name: o.decision.name,
    size: o.decision.size,
    state: o.state,
    reason: o.decision.reason,
    detail: o.decision.detail,
    ...(o.message ? { message: o.message } : {}),
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
