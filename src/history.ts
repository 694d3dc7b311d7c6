// The pass's two writes of the usage history (src/engine/state.ts): what it saw at its start (images, their
// use and tags, the filesystem), then after a prune what it removed and the filesystem after. From the
// history as written come the forecast and the re-fetches the report shows (src/policy/trend.ts).

import type { DiskStats } from './engine/disk';
import { updateState } from './engine/state';
import { recordRemovals, recordUsage, type DaemonUsage } from './policy/usage';
import { forecastOf, refetchSummary, type Trend } from './policy/trend';
import type { ImageRow } from './report/rows';
import type { Inventory } from './types';

/** What this run recorded at its start: the daemon's history as written, or a warning. */
export interface Recorded {
  daemonKey: string;
  nowMs: number;
  usage?: DaemonUsage;
  warnings: string[];
}

/** Record usage: this run's sightings and its filesystem into the history; a warning when they could not be. */
export async function recordStart(
  stateDir: string,
  inventory: Inventory,
  daemonKey: string,
  disk: { path?: string; before?: DiskStats },
  nowMs: number,
): Promise<Recorded> {
  const before = disk.before;
  const seen = {
    daemonId: daemonKey,
    images: inventory.images.map((image) => image.id),
    inUse: inventory.containers.map((c) => c.imageId),
    tags: Object.fromEntries(inventory.images.map((image) => [image.id, image.repoTags])),
    nowMs,
    ...(disk.path && before
      ? { disk: { path: disk.path, freeBytes: before.freeBytes, freeInodes: before.freeInodes } }
      : {}),
  };
  const written = await updateState(stateDir, (state) => recordUsage(state, seen));
  return {
    daemonKey,
    nowMs,
    usage: written.state?.daemons[daemonKey],
    warnings: written.warning ? [written.warning] : [],
  };
}

/**
 * After a prune: the images it removed (from its report's `rows`, with the bytes each freed alone, else its
 * size) are remembered for the re-fetch window, and the filesystem after completes this run's sample. A
 * warning when it could not.
 */
export async function recordPrune(
  stateDir: string,
  recorded: Recorded,
  rows: ImageRow[],
  after: DiskStats | undefined,
): Promise<string | undefined> {
  if (!recorded.usage) return undefined;
  const nowMs = Date.now();
  const removed = rows
    .filter((row) => row.state === 'removed')
    .map((row) => ({
      id: row.image.id,
      ms: nowMs,
      bytes: row.uniqueBytes || row.image.size,
      tags: row.image.repoTags,
    }));
  const done = {
    daemonId: recorded.daemonKey,
    startMs: recorded.nowMs,
    nowMs,
    removed,
    ...(after ? { diskAfter: { freeBytes: after.freeBytes, freeInodes: after.freeInodes } } : {}),
  };
  return (await updateState(stateDir, (state) => recordRemovals(state, done))).warning;
}

/** The trend as this run recorded it, the forecast from the free space now (after a prune, as measured). */
export function trendOf(recorded: Recorded, now: DiskStats | undefined): Trend | undefined {
  if (!recorded.usage) return undefined;
  const samples = recorded.usage.disk ?? [];
  return {
    ...(now ? { forecast: forecastOf(samples, now) } : {}),
    refetch: refetchSummary(recorded.usage, recorded.nowMs),
  };
}
