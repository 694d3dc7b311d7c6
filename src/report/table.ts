// The command's report for a person: plain text columns, as a pure function of the run's facts. User
// strings are neutralised (src/text.ts) field by field, so columns line up and a hostile name cannot move
// the cursor, forge lines or carry a workflow command.

import { pushTo, sumOf } from '../collections';
import type { RunFacts } from './facts';
import { formatAge, formatBytes, shortId } from './format';
import type { ImageRow } from './rows';
import { buildCacheSentence, sectionsOf, UNIQUE_NOTE, type Sections } from './sections';
import { neutralise as plain } from '../text';
import { trendLines, unaccountedLines } from './trend-lines';

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
  const s = sectionsOf(facts, rows);
  return (
    [
      ...headLines(facts, s),
      ...(s.budget ? budgetSection(s.budget, s.prune, limit) : []),
      ...trendSection(facts),
      ...imageLines(s, facts.nowMs, limit),
      ...objectLines(s, limit),
    ].join('\n') + '\n'
  );
}

/** The title, the headline, the daemon, the estimate, the runner images, failures and warnings. */
function headLines(facts: RunFacts, s: Sections): string[] {
  return [
    s.title,
    plain(`${s.head.action} ${s.head.rest}`),
    `Daemon ${plain(facts.host)}: ${plain(s.head.daemon)}`,
    `Estimate method: ${plain(facts.plan.estimateMethod.method)}`,
    ...(s.trust ? [s.trust] : []),
    ...(s.runner ? [plain(s.runner)] : []),
    ...(facts.failures ?? []).map((failure) => `FAILED: ${plain(failure)}`),
    ...facts.warnings.map((warning) => `warning: ${plain(warning)}`),
  ];
}

/** The disk forecast and the re-fetches. */
function trendSection(facts: RunFacts): string[] {
  const lines = [...trendLines(facts.trend), ...unaccountedLines(facts.unaccounted)];
  return lines.length > 0 ? ['', 'Disk trend', ...lines.map((line) => `  ${plain(line)}`)] : [];
}

/** The budget's lines, and its removals in order. */
function budgetSection(budget: NonNullable<Sections['budget']>, prune: boolean, limit: number): string[] {
  const out = ['', 'Budget', ...budget.lines.map((line) => `  ${plain(line)}`)];
  if (budget.steps.length > 0) {
    out.push('', `${prune ? 'Removed' : 'Would remove'} in budget order (${budget.steps.length})`);
    out.push(
      ...columns(
        ['#', 'KIND', 'NAME', 'LAST USED', 'FREES', 'TOTAL', ''],
        budget.steps.map((cells) => cells.map(plain)),
        limit,
      ),
    );
  }
  return out;
}

/** The images that go (by repository), then the kept and other images with their reasons. */
function imageLines(s: Sections, nowMs: number, limit: number): string[] {
  const removedCells = s.removedByRepository.map(([, r]) => [
    shortId(r.image.id),
    plain(tags(r)),
    formatAge(r.image.createdMs, nowMs),
    formatBytes(r.uniqueBytes),
    plain(r.detail),
  ]);
  const keptCells = (s.others.length > SCREEN ? [] : s.others).map((r) => [
    shortId(r.image.id),
    plain(tags(r)),
    formatAge(r.image.createdMs, nowMs),
    formatBytes(r.uniqueBytes),
    r.state === 'kept' ? r.reason : r.state,
    plain(r.message ? `${r.detail}: ${r.message}` : r.detail),
  ]);
  return [
    '',
    `${s.prune ? 'Removed' : 'Would remove'} (${s.removed.length} images)`,
    ...(removedCells.length
      ? [...columns(['IMAGE', 'TAGS', 'AGE', 'UNIQUE', 'WHY'], removedCells, limit), `  ${UNIQUE_NOTE}`]
      : ['  nothing']),
    '',
    ...(s.others.length > SCREEN
      ? keptByReason(s.others, limit)
      : [
          `Kept and other images (${s.others.length})`,
          ...(keptCells.length
            ? columns(['IMAGE', 'TAGS', 'AGE', 'UNIQUE', 'REASON', 'DETAIL'], keptCells, limit)
            : []),
        ]),
  ];
}

/** Past this many, the kept images are one line per reason: a person reads a screenful, not a list. */
const SCREEN = 40;
const EXAMPLES = 3;

/** The kept and other images by reason (or state), most first: how many, their unique bytes, a few names. */
function keptByReason(others: ImageRow[], limit: number): string[] {
  const groups = new Map<string, ImageRow[]>();
  for (const r of others) pushTo(groups, r.state === 'kept' ? r.reason : r.state, r);
  const rows = [...groups]
    .sort(([a, x], [b, y]) => y.length - x.length || a.localeCompare(b))
    .map(([reason, members]) => {
      const names = members.slice(0, EXAMPLES).map((r) => plain(r.image.repoTags[0] ?? shortId(r.image.id)));
      const more = members.length > EXAMPLES ? `, … ${members.length - EXAMPLES} more` : '';
      return [
        reason,
        String(members.length),
        formatBytes(sumOf(members, (r) => r.uniqueBytes)),
        names.join(', ') + more,
      ];
    });
  return [
    `Kept and other images (${others.length}), by reason (--json or the report file lists each with its detail)`,
    ...columns(['REASON', 'IMAGES', 'UNIQUE', 'FOR EXAMPLE'], rows, limit),
  ];
}

/** Containers, networks and volumes of the classes this run cleans, and the build cache. */
function objectLines(s: Sections, limit: number): string[] {
  const out: string[] = [];
  if (s.objects.length > 0) {
    out.push('', `Containers, networks and volumes (${s.objects.length})`);
    out.push(
      ...columns(
        ['KIND', 'NAME', 'SIZE', 'STATE', 'REASON', 'DETAIL'],
        s.objects.map((r) => [
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
  if (s.buildCache) out.push('', `Build cache: ${buildCacheSentence(s.buildCache, plain)}`);
  return out;
}
