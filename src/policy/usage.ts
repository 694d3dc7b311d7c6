// Usage history, as pure functions: what the state file holds, how a run's observation is recorded in
// it, and when each image was last used. The file itself is read and written by src/engine/state.ts.
//
// The history only ever orders candidates (least recently used first); it never makes an image a
// candidate. So a missing, foreign or corrupt file costs ordering quality, never safety.

import type { ContainerInfo, ImageInfo } from '../types';

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

export interface DaemonUsage {
  updatedMs: number;
  images: Record<string, ImageUsage>;
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
    daemons[id] = { updatedMs: Number((entry as DaemonUsage)?.updatedMs) || 0, images };
  }
  return { state: { format: STATE_FORMAT, version: STATE_VERSION, daemons } };
}

/** What one run saw of one daemon. */
export interface Observation {
  daemonId: string;
  /** Every image present. */
  images: string[];
  /** Images a container (running, stopped or created) refers to now. */
  inUse: string[];
  nowMs: number;
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
  const daemons = { ...state.daemons, [seen.daemonId]: { updatedMs: seen.nowMs, images } };
  const kept = Object.entries(daemons)
    .sort(([, a], [, b]) => b.updatedMs - a.updatedMs)
    .slice(0, MAX_DAEMONS);
  return { format: STATE_FORMAT, version: STATE_VERSION, daemons: Object.fromEntries(kept) };
}

/**
 * When each image was last used, epoch ms: the latest of the history's last use, its containers'
 * created, started and finished times (a running container: now) and when it was last tagged.
 * Times in the future (a clock that jumped, a hand-edited file) count as now.
 */
export function lastUsedTimes(
  images: ImageInfo[],
  containers: ContainerInfo[],
  history: DaemonUsage | undefined,
  nowMs: number,
): Map<string, number> {
  const times = new Map<string, number>();
  const bump = (id: string, ms: number | undefined) => {
    if (ms === undefined || !Number.isFinite(ms) || ms <= 0) return;
    times.set(id, Math.max(times.get(id) ?? 0, Math.min(ms, nowMs)));
  };
  for (const image of images) {
    times.set(image.id, 0);
    bump(image.id, history?.images[image.id]?.lastUsedMs);
    bump(image.id, image.lastTagMs);
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
