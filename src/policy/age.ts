// When things came to this host, as pure functions: the grace period (`min-age`) keeps what arrived or was
// last used recently, and `keep-recent` ranks a repository's images by when they were made or arrived.

import type { ContainerInfo, ImageInfo } from '../types';

/**
 * Where the usage history of this daemon existed before this run: when each image was first seen by a run.
 * An image missing from it arrived after the last run, so it counts as arriving now. Undefined on a run with
 * no earlier history: a first run on a host must not keep everything for that reason alone.
 */
export type FirstSeen = ReadonlyMap<string, number>;

/** Which record said when an image arrived. */
export type ArrivalClock = 'tagged' | 'first-seen' | 'created';

export interface Arrival {
  ms: number;
  by: ArrivalClock;
}

/**
 * When an image came to this host, epoch ms: the engine's own record (the last tag time: a pull, load,
 * build or tag sets it; the containerd store sets it for untagged images too), else the usage history's
 * first sighting where an earlier run's history exists. An image cannot arrive before it was made, so its
 * creation time is a floor. Times in the future (a clock that jumped) count as now.
 */
export function arrivalOf(image: ImageInfo, firstSeen: FirstSeen | undefined, nowMs: number): Arrival {
  const times: Arrival[] = [{ ms: image.createdMs, by: 'created' }];
  if ((image.lastTagMs ?? 0) > 0) times.push({ ms: image.lastTagMs!, by: 'tagged' });
  else if (firstSeen) times.push({ ms: firstSeen.get(image.id) ?? nowMs, by: 'first-seen' });
  // On a tie the engine's record or the history names the clock: it says more than the image's own stamp.
  const latest = times.reduce((a, b) => (b.ms >= a.ms ? b : a));
  return { ms: Math.min(latest.ms, nowMs), by: latest.by };
}

/** A stopped container's last activity, epoch ms: when it finished, started or (never started) was created. */
export function containerActivityMs(c: ContainerInfo, nowMs: number): number {
  return Math.min(nowMs, Math.max(c.createdMs, c.startedMs ?? 0, c.finishedMs ?? 0));
}

/** "12m ago", "3h ago": how long before now, for a reason's detail. */
export function ago(ms: number, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

/** A duration as people write it: 1h, 90m, 6h, 2d. */
export function durationText(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'm'],
    [1000, 's'],
  ];
  for (const [size, unit] of units) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/**
 * Before this, a `created` time is a reproducible-build stamp (buildpacks, ko, jib and Nix write 1970 or
 * 1980), not when the image was built.
 */
export const FIXED_CREATED_BEFORE_MS = Date.UTC(2000, 0, 1);

/**
 * The clock that ranks a repository's images for `keep-recent`: their creation time, unless it says
 * nothing (every image stamped before 2000, or all of them with one shared value), then their arrival.
 */
export function rankingClock(members: ImageInfo[]): 'created' | 'arrival' {
  const fixed = members.every((image) => image.createdMs < FIXED_CREATED_BEFORE_MS);
  const shared = members.length > 1 && members.every((image) => image.createdMs === members[0].createdMs);
  return fixed || shared ? 'arrival' : 'created';
}
