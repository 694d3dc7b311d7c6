// The disk trend as a person reads it, for the summary and the command's table alike: when the disk will
// be full at the rate it fills between runs, and what this tool removed that came back.

import type { NotMeasured, Unaccounted } from '../engine/unaccounted';
import type { Trend } from '../policy/trend';
import { formatAge, formatBytes } from './format';

/** A span as formatAge writes ages (42m, 9h, 3d). */
const span = (ms: number) => formatAge(0, ms);

/** The trend's lines; none when the history could not be written. */
export function trendLines(trend: Trend | undefined): string[] {
  if (!trend) return [];
  const lines: string[] = [];
  const f = trend.forecast;
  if (f) {
    const basis = `from ${f.samples} runs over ${span(f.spanMs)}`;
    const bytes =
      f.msToFull === undefined
        ? `not filling (${formatBytes(-f.bytesPerHour)}/h freed between runs)`
        : `full in about ${span(f.msToFull)} at ${formatBytes(f.bytesPerHour)}/h`;
    const inodes =
      f.msToInodesFull === undefined
        ? 'inodes not filling'
        : `inodes full in about ${span(f.msToInodesFull)}`;
    lines.push(`Disk forecast: ${bytes}; ${inodes} (${basis}, linear, what runs removed left out)`);
  } else {
    lines.push(
      'Disk forecast: not yet (it needs two runs a minute or more apart that measured this filesystem)',
    );
  }
  const r = trend.refetch;
  lines.push(
    `Re-fetched within ${span(r.windowMs)}: ${r.count} image(s), ${formatBytes(r.bytes)}` +
      (r.count > 0
        ? ` (${r.newCount} found by this run): removed by this tool, then pulled or built again; a budget or keep-recent this tight costs downloads`
        : ' (images this tool removed that came back)'),
  );
  return lines;
}

/** The data root's space the daemon does not account for, as one line; none when it is not on this machine. */
export function unaccountedLines(u: Unaccounted | NotMeasured | undefined): string[] {
  if (!u) return [];
  if ('why' in u) return [`Not accounted for by the daemon under ${u.path}: not measured (${u.why})`];
  const how =
    u.method === 'filesystem'
      ? 'its own filesystem'
      : u.complete
        ? 'its files summed'
        : 'the files summed before the walk stopped at its bound: at least';
  return [
    `Not accounted for by the daemon under ${u.path}: ${formatBytes(u.unaccountedBytes)} ` +
      `(${formatBytes(u.usedBytes)} used, ${how}; the daemon counts ${formatBytes(u.accountedBytes)}): ` +
      "logs, orphaned layers, the daemon's own files and files others put there; never removed",
  ];
}
