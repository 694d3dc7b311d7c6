// What the job summary, the command's table and the pull-request comment say, decided once: the headline
// and the sections, computed from the run's facts and rows; each renderer only renders them.

import type { RunFacts } from './facts';
import { isBounded, measuredBytes, type Totals } from './figures';
import { describeEngine, formatBytes } from './format';

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
