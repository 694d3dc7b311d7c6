// Usage history, as pure functions: what the state file holds, how a run's observation is recorded in
// it, and when each image was last used. The file itself is read and written by src/engine/state.ts.
//
// The history only ever orders candidates (least recently used first); it never makes an image a
// candidate. So a missing, foreign or corrupt file costs ordering quality, never safety.

import type { ContainerInfo, ImageInfo } from '../types';
import { findRefetches, MAX_REMOVED, MAX_SAMPLES, TREND_WINDOW_MS, type Refetch } from './trend';

export const STATE_FORMAT = 'safe-docker-prune/usage';
export const STATE_VERSION = 1;
/** Daemons kept in one file, the most recently seen first (tests and CI start many short-lived ones). */
export const MAX_DAEMONS = 64;

export interface ImageUsage {
  /** When a run first saw the image on this daemon, epoch ms. */
  firstSeenMs: number;
  /** When a run last saw a container (any state) use it, epoch ms. */
  lastUsedMs?: number;
}

/** The measured filesystem as one run found it: at its start, and after its prune. */
export interface DiskSample {
  ms: number;
  /** The path measured: a sample of another path starts the series again. */
  path: string;
  freeBytes: number;
  freeInodes: number;
  afterMs?: number;
  freeBytesAfter?: number;
  freeInodesAfter?: number;
}

/** An image this tool removed, remembered for the re-fetch window. */
export interface RemovedImage {
  ms: number;
  /** What its removal freed (the plan's exact estimate), else its size. */
  bytes: number;
  tags: string[];
}

export interface DaemonUsage {
  updatedMs: number;
  images: Record<string, ImageUsage>;
  /** Oldest first, within TREND_WINDOW_MS, of one path. */
  disk?: DiskSample[];
  /** By image ID. */
  removed?: Record<string, RemovedImage>;
  /** Removed images seen again, oldest first, within TREND_WINDOW_MS. */
  refetched?: Refetch[];
}

export interface UsageState {
  format: typeof STATE_FORMAT;
  version: typeof STATE_VERSION;
  /** By daemon ID (`/info` ID). */
  daemons: Record<string, DaemonUsage>;
}

export const emptyState = (): UsageState => ({ format: STATE_FORMAT, version: STATE_VERSION, daemons: {} });

/**
 * The state in a file's text. `foreign`: a file that is not ours (or a newer version's), which must not be
 * overwritten; `corrupt`: ours but unreadable, replaced on the next write. Either way the run goes on with
 * no history.
 */
export function parseState(text: string): {
  state: UsageState;
  problem?: 'foreign' | 'corrupt';
  why?: string;
} {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text: never repeat what a file holds in a warning or a summary.
    return { state: emptyState(), problem: 'corrupt', why: 'not valid JSON' };
  }
  const doc = data as Partial<UsageState> | null;
  if (!doc || typeof doc !== 'object' || doc.format !== STATE_FORMAT) {
    return { state: emptyState(), problem: 'foreign', why: `not a ${STATE_FORMAT} file` };
  }
  if (doc.version !== STATE_VERSION) {
    return {
      state: emptyState(),
      problem: 'foreign',
      why: `format version ${String(doc.version)}, not ${STATE_VERSION}`,
    };
  }
  if (!doc.daemons || typeof doc.daemons !== 'object' || Array.isArray(doc.daemons)) {
    return { state: emptyState(), problem: 'corrupt', why: 'no daemons table' };
  }
  const daemons: Record<string, DaemonUsage> = {};
  for (const [id, entry] of Object.entries(doc.daemons)) {
    const images: Record<string, ImageUsage> = {};
    for (const [image, use] of Object.entries((entry as DaemonUsage)?.images ?? {})) {
      // Anything not a finite time is dropped rather than trusted.
      const first = Number((use as ImageUsage)?.firstSeenMs);
      const last = (use as ImageUsage)?.lastUsedMs;
      if (!Number.isFinite(first)) continue;
      images[image] = Number.isFinite(last)
        ? { firstSeenMs: first, lastUsedMs: Number(last) }
        : { firstSeenMs: first };
    }
    daemons[id] = {
      updatedMs: Number((entry as DaemonUsage)?.updatedMs) || 0,
      images,
      ...trendOf(entry as DaemonUsage),
    };
  }
  return { state: { format: STATE_FORMAT, version: STATE_VERSION, daemons } };
}

const finite = (...values: unknown[]) => values.every((v) => typeof v === 'number' && Number.isFinite(v));
const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((t) => typeof t === 'string');

/** The trend parts of a daemon's entry, each record kept only when every number in it is finite. */
function trendOf(
  entry: Partial<DaemonUsage> | undefined,
): Pick<DaemonUsage, 'disk' | 'removed' | 'refetched'> {
  const disk = (Array.isArray(entry?.disk) ? entry.disk : []).filter(
    (d: DiskSample) =>
      typeof d?.path === 'string' &&
      finite(d.ms, d.freeBytes, d.freeInodes) &&
      (d.afterMs === undefined || finite(d.afterMs, d.freeBytesAfter, d.freeInodesAfter)),
  );
  const removed: Record<string, RemovedImage> = {};
  const given = entry?.removed && typeof entry.removed === 'object' ? entry.removed : {};
  for (const [id, r] of Object.entries(given)) {
    if (finite(r?.ms, r?.bytes) && strings(r.tags)) removed[id] = { ms: r.ms, bytes: r.bytes, tags: r.tags };
  }
  const refetched = (Array.isArray(entry?.refetched) ? entry.refetched : []).filter(
    (r: Refetch) =>
      typeof r?.id === 'string' &&
      (r.tag === undefined || typeof r.tag === 'string') &&
      finite(r.bytes, r.removedMs, r.seenMs),
  );
  return {
    ...(disk.length > 0 ? { disk } : {}),
    ...(Object.keys(removed).length > 0 ? { removed } : {}),
    ...(refetched.length > 0 ? { refetched } : {}),
  };
}

/** What one run saw of one daemon. */
export interface Observation {
  daemonId: string;
  /** Every image present. */
  images: string[];
  /** Images a container (running, stopped or created) refers to now. */
  inUse: string[];
  nowMs: number;
  /** Each present image's tags, for re-fetches by tag (without them, re-fetches are found by ID only). */
  tags?: Record<string, string[]>;
  /** The measured filesystem at the run's start. */
  disk?: Omit<DiskSample, 'ms'>;
}

/**
 * `state` with `seen` recorded: images in use now are used now; each image keeps the first time it was
 * seen; images no longer present are dropped. Applied to what the file holds at the moment of writing
 * (under its lock), so two runs at once both land.
 */
export function recordUsage(state: UsageState, seen: Observation): UsageState {
  const before = state.daemons[seen.daemonId]?.images ?? {};
  const inUse = new Set(seen.inUse);
  const images: Record<string, ImageUsage> = {};
  for (const id of seen.images) {
    const old = before[id];
    const firstSeenMs = Math.min(old?.firstSeenMs ?? seen.nowMs, seen.nowMs);
    const last = Math.max(old?.lastUsedMs ?? -Infinity, inUse.has(id) ? seen.nowMs : -Infinity);
    images[id] = Number.isFinite(last) ? { firstSeenMs, lastUsedMs: last } : { firstSeenMs };
  }
  const entry: DaemonUsage = {
    updatedMs: seen.nowMs,
    images,
    ...recordTrend(state.daemons[seen.daemonId], seen),
  };
  return withDaemon(state, seen.daemonId, entry);
}

/** `state` with `entry` as the daemon's, the most recently updated MAX_DAEMONS kept. */
function withDaemon(state: UsageState, daemonId: string, entry: DaemonUsage): UsageState {
  const daemons = { ...state.daemons, [daemonId]: entry };
  const kept = Object.entries(daemons)
    .sort(([, a], [, b]) => b.updatedMs - a.updatedMs)
    .slice(0, MAX_DAEMONS);
  return { format: STATE_FORMAT, version: STATE_VERSION, daemons: Object.fromEntries(kept) };
}

const recent = (ms: number, nowMs: number) => nowMs - ms <= TREND_WINDOW_MS;

/**
 * The trend after a run's start: its disk sample appended (a new path starts the series again), the
 * removed images it sees again moved to the re-fetched, everything older than the window dropped.
 */
function recordTrend(
  old: DaemonUsage | undefined,
  seen: Observation,
): Omit<DaemonUsage, 'updatedMs' | 'images'> {
  const removed = Object.fromEntries(
    Object.entries(old?.removed ?? {}).filter(([, r]) => recent(r.ms, seen.nowMs)),
  );
  const present = new Map(seen.images.map((id) => [id, seen.tags?.[id] ?? []]));
  const { found, still } = findRefetches(removed, present, seen.nowMs);
  const refetched = [...(old?.refetched ?? []), ...found]
    .filter((r) => recent(r.seenMs, seen.nowMs))
    .slice(-MAX_REMOVED);
  let disk = (old?.disk ?? []).filter(
    (d) => recent(d.ms, seen.nowMs) && (!seen.disk || d.path === seen.disk.path),
  );
  if (seen.disk) disk = [...disk, { ms: seen.nowMs, ...seen.disk }].slice(-MAX_SAMPLES);
  return {
    ...(disk.length > 0 ? { disk } : {}),
    ...(Object.keys(still).length > 0 ? { removed: still } : {}),
    ...(refetched.length > 0 ? { refetched } : {}),
  };
}

/** What a prune did, for the history: the images it removed, and the filesystem after. */
export interface Removals {
  daemonId: string;
  /** The run's start (its observation's `nowMs`), which names its disk sample. */
  startMs: number;
  nowMs: number;
  removed: (RemovedImage & { id: string })[];
  diskAfter?: { freeBytes: number; freeInodes: number };
}

/** `state` with a prune's removals remembered (the newest MAX_REMOVED) and its disk sample completed. */
export function recordRemovals(state: UsageState, done: Removals): UsageState {
  const old = state.daemons[done.daemonId];
  if (!old) return state;
  const removed = { ...(old.removed ?? {}) };
  for (const { id, ...r } of done.removed) removed[id] = r;
  const kept = Object.entries(removed)
    .sort(([, a], [, b]) => b.ms - a.ms)
    .slice(0, MAX_REMOVED);
  const after = done.diskAfter;
  const disk = (old.disk ?? []).map((d) =>
    d.ms === done.startMs && after
      ? { ...d, afterMs: done.nowMs, freeBytesAfter: after.freeBytes, freeInodesAfter: after.freeInodes }
      : d,
  );
  const entry: DaemonUsage = {
    ...old,
    ...(disk.length > 0 ? { disk } : {}),
    ...(kept.length > 0 ? { removed: Object.fromEntries(kept) } : {}),
  };
  return withDaemon(state, done.daemonId, entry);
}

/**
 * When each image was last used, epoch ms: the latest of its last use by a container (`used`, see
 * containerUseTimes) and when it was last tagged.
 */
export function lastUsedTimes(
  images: ImageInfo[],
  containers: ContainerInfo[],
  history: DaemonUsage | undefined,
  nowMs: number,
  used = containerUseTimes(images, containers, history, nowMs),
): Map<string, number> {
  const times = new Map(used);
  for (const image of images) bumpTime(times, image.id, image.lastTagMs, nowMs);
  return times;
}

/** `times` with `id` at `ms` where that is later (a time in the future counts as now; none, 0 or less: no time). */
function bumpTime(times: Map<string, number>, id: string, ms: number | undefined, nowMs: number): void {
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) return;
  times.set(id, Math.max(times.get(id) ?? 0, Math.min(ms, nowMs)));
}

/**
 * When a container last used each image, epoch ms (0: never seen used): the latest of the history's last
 * use and its containers' created, started and finished times (a running container: now). Times in the
 * future (a clock that jumped, a hand-edited file) count as now.
 */
export function containerUseTimes(
  images: ImageInfo[],
  containers: ContainerInfo[],
  history: DaemonUsage | undefined,
  nowMs: number,
): Map<string, number> {
  const times = new Map<string, number>();
  const bump = (id: string, ms: number | undefined) => bumpTime(times, id, ms, nowMs);
  for (const image of images) {
    times.set(image.id, 0);
    bump(image.id, history?.images[image.id]?.lastUsedMs);
  }
  for (const c of containers) {
    if (!times.has(c.imageId)) continue;
    bump(c.imageId, c.createdMs);
    bump(c.imageId, c.startedMs);
    bump(c.imageId, c.finishedMs);
    if (c.state === 'running' || c.state === 'paused' || c.state === 'restarting') bump(c.imageId, nowMs);
  }
  return times;
}
