// The command's report for a person: plain text columns, as a pure function of the run's facts. User
// strings are neutralised (src/text.ts) field by field, so columns line up and a hostile name cannot move
// the cursor, forge lines or carry a workflow command.

import { budgetLines, budgetStepCells } from './budget-lines';
import type { RunFacts } from './facts';
import {
  estimateRange,
  figureToTrust,
  isBounded,
  measuredBytes,
  runnerImagesLine,
  totalsOf,
} from './figures';
import { formatAge, formatBytes, shortId } from './format';
import { groupByRepository, objectRows, type FinalState, type ImageRow } from './rows';
import { headline } from './sections';
import { neutralise as plain } from '../text';

function columns(headers: string[], rows: string[][], limit: number): string[] {
  const shown = rows.slice(0, limit);
  const widths = headers.map((h, i) => Math.min(60, Math.max(h.length, ...shown.map((r) => r[i].length))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const out = [line(headers), ...shown.map(line)].map((l) => `  ${l}`);
  if (rows.length > limit)
    out.push(`  … and ${rows.length - limit} more (--json or the report file has them all)`);
  return out;
}

const tags = (row: ImageRow) => (row.image.repoTags.length > 0 ? row.image.repoTags.join(' ') : '<untagged>');

/** The run as text: headline, daemon, removed and kept images with reasons, other classes, warnings. */
export function renderTable(facts: RunFacts, rows: ImageRow[], limit = 200): string {
  const totals = totalsOf(facts, rows);
  const head = headline(facts, totals);
  const prune = facts.plan.mode === 'prune';
  const out: string[] = [
    `safe-docker-prune: ${prune ? 'prune' : 'report (nothing was removed)'}`,
    plain(`${head.action} ${head.rest}`),
    `Daemon ${plain(facts.host)}: ${plain(head.daemon)}`,
    `Estimate method: ${plain(facts.plan.estimateMethod.method)}`,
  ];
  const range = estimateRange(facts.plan);
  if (isBounded(range)) out.push(figureToTrust(range, prune ? measuredBytes(facts) : undefined));
  const runner = runnerImagesLine(facts, rows);
  if (runner) out.push(plain(runner));
  for (const failure of facts.failures ?? []) out.push(`FAILED: ${plain(failure)}`);
  for (const warning of facts.warnings) out.push(`warning: ${plain(warning)}`);

  const budget = facts.plan.budget;
  if (budget) {
    out.push('', 'Budget');
    out.push(...budgetLines(budget).map((line) => `  ${plain(line)}`));
    if (budget.steps.length > 0) {
      out.push('', `${prune ? 'Removed' : 'Would remove'} in budget order (${budget.steps.length})`);
      out.push(
        ...columns(
          ['#', 'KIND', 'NAME', 'LAST USED', 'FREES', 'TOTAL', ''],
          budgetStepCells(budget, facts.nowMs).map((cells) => cells.map(plain)),
          limit,
        ),
      );
    }
  }

  const going = new Set<FinalState>(['removed', 'would-remove', 'untagged']);
  const removed = rows.filter((r) => going.has(r.state));
  out.push('', `${prune ? 'Removed' : 'Would remove'} (${removed.length} images)`);
  const removedCells = groupByRepository(removed).flatMap(([, members]) =>
    members.map((r) => [
      shortId(r.image.id),
      plain(tags(r)),
      formatAge(r.image.created, facts.nowMs),
      formatBytes(r.image.size),
      plain(r.detail),
    ]),
  );
  out.push(
    ...(removedCells.length
      ? columns(['IMAGE', 'TAGS', 'AGE', 'SIZE', 'WHY'], removedCells, limit)
      : ['  nothing']),
  );

  const others = rows.filter((r) => !going.has(r.state));
  out.push('', `Kept and other images (${others.length})`);
  const keptCells = others.map((r) => [
    shortId(r.image.id),
    plain(tags(r)),
    formatAge(r.image.created, facts.nowMs),
    formatBytes(r.image.size),
    r.state === 'kept' ? r.reason : r.state,
    plain(r.message ? `${r.detail}: ${r.message}` : r.detail),
  ]);
  if (keptCells.length)
    out.push(...columns(['IMAGE', 'TAGS', 'AGE', 'SIZE', 'REASON', 'DETAIL'], keptCells, limit));

  const objects = objectRows(facts.plan, facts.objectResults).filter(
    (r) => r.decision.reason !== 'not-selected',
  );
  if (objects.length > 0) {
    out.push('', `Containers, networks and volumes (${objects.length})`);
    out.push(
      ...columns(
        ['KIND', 'NAME', 'SIZE', 'STATE', 'REASON', 'DETAIL'],
        objects.map((r) => [
          r.decision.kind,
          plain(r.decision.name),
          formatBytes(r.decision.size),
          r.state,
          r.decision.reason,
          plain(r.message ? `${r.decision.detail}: ${r.message}` : r.decision.detail),
        ]),
        limit,
      ),
    );
  }
  const cache = facts.plan.buildCache;
  if (cache) {
    const result = facts.buildCacheResult;
    out.push(
      '',
      `Build cache: ${plain(cache.detail)}; estimated ${formatBytes(cache.estimatedBytes)}` +
        (result
          ? result.status === 'removed'
            ? `, the daemon freed ${formatBytes(result.reclaimedBytes)}`
            : `, not pruned (${plain(result.message ?? result.status)})`
          : ''),
    );
  }
  return out.join('\n') + '\n';
}
