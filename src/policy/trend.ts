// The disk over time and the cost of removing, as pure functions of the usage history (src/policy/usage.ts):
// a time-to-full forecast from the free space each run recorded, and the images this tool removed that
// came back (pulled or built again) soon after, which is pure cost: a budget set too tight.

import type { DaemonUsage, DiskSample } from './usage';

/** How long samples and removals are kept, and the window re-fetches are counted in. */
export const TREND_WINDOW_MS = 7 * 86_400_000;
/** Samples kept per daemon (a run every few minutes fills it in hours; older ones then go first). */
export const MAX_SAMPLES = 200;
/** Removals remembered per daemon, the newest kept; re-fetch events likewise. */
export const MAX_REMOVED = 2000;

export interface Forecast {
  /** Runs the estimate rests on (samples), and the span they cover, ms. */
  samples: number;
  spanMs: number;
  /** Free bytes consumed per hour between runs (negative: the disk empties by itself); removals by runs excluded. */
  bytesPerHour: number;
  /** Until the free bytes reach 0 at that rate, ms; undefined when it is not filling. */
  msToFull?: number;
  inodesPerHour: number;
  msToInodesFull?: number;
}

/** The free space now, as the forecast starts from it (after a prune, as measured after). */
export interface FreeNow {
  freeBytes: number;
  freeInodes: number;
}

/**
 * Time to full, linear over the recent history: the free bytes (and inodes) the host consumed between one
 * run's end and the next run's start, summed, over the time those gaps span. What runs removed is not
 * consumption, so a prune's jump does not hide the trend. Undefined with fewer than two samples of this
 * filesystem, or gaps shorter than a minute in all.
 */
export function forecastOf(given: DiskSample[], now: FreeNow): Forecast | undefined {
  // In order of their starts: two runs at once write theirs in the order they finish.
  const samples = [...given].sort((a, b) => a.ms - b.ms);
  let bytes = 0;
  let inodes = 0;
  let spanMs = 0;
  for (let i = 1; i < samples.length; i++) {
    const from = samples[i - 1];
    const to = samples[i];
    const fromMs = from.afterMs ?? from.ms;
    if (to.ms <= fromMs) continue;
    bytes += (from.freeBytesAfter ?? from.freeBytes) - to.freeBytes;
    inodes += (from.freeInodesAfter ?? from.freeInodes) - to.freeInodes;
    spanMs += to.ms - fromMs;
  }
  if (samples.length < 2 || spanMs < 60_000) return undefined;
  const perMs = bytes / spanMs;
  const inodesPerMs = inodes / spanMs;
  return {
    samples: samples.length,
    spanMs,
    bytesPerHour: Math.round(perMs * 3_600_000),
    ...(perMs > 0 ? { msToFull: Math.round(Math.max(0, now.freeBytes) / perMs) } : {}),
    inodesPerHour: Math.round(inodesPerMs * 3_600_000),
    ...(inodesPerMs > 0 ? { msToInodesFull: Math.round(Math.max(0, now.freeInodes) / inodesPerMs) } : {}),
  };
}

/** An image this tool removed, seen again: by the same ID, or a tag it had on another image. */
export interface Refetch {
  id: string;
  /** The tag it came back under, when it came back as another image. */
  tag?: string;
  bytes: number;
  removedMs: number;
  seenMs: number;
}

export interface RefetchSummary {
  windowMs: number;
  count: number;
  bytes: number;
  /** Found by this run. */
  newCount: number;
  /** The most recent first, at most 20. */
  recent: Refetch[];
}

/**
 * The images of `removed` that `present` (ID to tags) holds again, each counted once: by its ID, else by
 * a tag it had (then once per removed image, the first tag found); only removals before `nowMs` count.
 * Returns them and what stays removed.
 */
export function findRefetches(
  removed: NonNullable<DaemonUsage['removed']>,
  present: Map<string, string[]>,
  nowMs: number,
): { found: Refetch[]; still: NonNullable<DaemonUsage['removed']> } {
  // Only removals before this sighting: a run that listed the images before another run removed one
  // must not count it as back.
  const still = Object.fromEntries(Object.entries(removed).filter(([, r]) => r.ms < nowMs));
  const later = Object.fromEntries(Object.entries(removed).filter(([, r]) => r.ms >= nowMs));
  const found: Refetch[] = [];
  for (const id of present.keys()) {
    const gone = still[id];
    if (!gone) continue;
    found.push({ id, bytes: gone.bytes, removedMs: gone.ms, seenMs: nowMs });
    delete still[id];
  }
  const byTag = new Map<string, string>();
  for (const [id, gone] of Object.entries(still)) for (const tag of gone.tags) byTag.set(tag, id);
  for (const [id, tags] of present) {
    for (const tag of tags) {
      const was = byTag.get(tag);
      if (!was || !still[was]) continue;
      found.push({ id, tag, bytes: still[was].bytes, removedMs: still[was].ms, seenMs: nowMs });
      delete still[was];
    }
  }
  return { found, still: { ...still, ...later } };
}

/** The re-fetches in the window, from the history as this run recorded it. */
export function refetchSummary(history: DaemonUsage | undefined, nowMs: number): RefetchSummary {
  const within = (history?.refetched ?? []).filter((r) => nowMs - r.seenMs <= TREND_WINDOW_MS);
  const recent = [...within].sort((a, b) => b.seenMs - a.seenMs);
  return {
    windowMs: TREND_WINDOW_MS,
    count: within.length,
    bytes: within.reduce((n, r) => n + r.bytes, 0),
    newCount: within.filter((r) => r.seenMs === nowMs).length,
    recent: recent.slice(0, 20),
  };
}

/** The forecast and the re-fetches, for the report. */
export interface Trend {
  /** Undefined when the free space is unknown or the history is too short. */
  forecast?: Forecast;
  refetch: RefetchSummary;
}
