// The job summary, as a pure function of the run's facts. Tables are HTML with every user-controlled
// string entity-escaped on one line, so tags, labels and names cannot change the summary's structure.

import { trendLines, unaccountedLines } from './trend-lines';
import { snapshotsInLayersSize } from '../policy/estimate';
import { neutralise } from '../text';
import type { GateResult } from '../types';
import type { Usage } from '../types';
import type { GateReport, RunFacts } from './facts';
import { isBounded } from './figures';
import { formatAge, formatBytes, shortId } from './format';
import type { FailureReport } from './json-report';
import type { ImageRow } from './rows';
import { buildCacheSentence, sectionsOf, UNIQUE_NOTE, type Sections } from './sections';

/**
 * Escapes for HTML text and attributes, plus the characters Markdown would act on, of text neutralised
 * first (src/text.ts: one line, controls and bidi controls shown, no workflow command).
 */
export function escapeHtml(text: string): string {
  return neutralise(text).replace(/[&<>"'`|*_[\]\\#~!]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * GitHub keeps at most 1 MiB of summary per step. A long list stops at this many rows, or sooner at this
 * many bytes, and ends with a line saying how many more the JSON report has. Eight lists can be long
 * (removed, kept, budget order, containers, networks, volumes, gates, warnings): 8 × 96 KiB leaves the
 * summary under 900 KiB whatever the names.
 */
const MAX_ROWS = 300;
const MAX_LIST_BYTES = 96 * 1024;
/** Tags shown in one cell; an image can carry dozens of 128-character tags. */
const MAX_TAGS = 5;
/** Up to this many images the removed list is open; past it, collapsed. */
const OPEN_ROWS = 20;
/** Warning lines listed before the rest are counted. */
const MAX_WARNINGS = 100;

const moreLine = (count: number) => `… and ${count} more, not shown here (the JSON report has them all)`;

/** The first items that fit both caps, rendered; only those are rendered, so huge lists cost little. */
function firstFitting<T>(items: readonly T[], render: (item: T) => string, maxItems: number): string[] {
  const out: string[] = [];
  let bytes = 0;
  for (const item of items) {
    if (out.length === maxItems) break;
    const line = render(item);
    bytes += Buffer.byteLength(line) + 1;
    if (bytes > MAX_LIST_BYTES) break;
    out.push(line);
  }
  return out;
}

function table<T>(headers: string[], items: readonly T[], cellsOf: (item: T) => string[]): string {
  const head = `<tr>${headers.map((h) => `<th>${h}</th>`).join('')}</tr>`;
  const body = firstFitting(
    items,
    (item) =>
      `<tr>${cellsOf(item)
        .map((c) => `<td>${c}</td>`)
        .join('')}</tr>`,
    MAX_ROWS,
  );
  const more = items.length > body.length ? `\n<p>${moreLine(items.length - body.length)}</p>` : '';
  return `<table>\n${head}\n${body.join('\n')}\n</table>${more}`;
}

const code = (text: string) => `<code>${escapeHtml(text)}</code>`;
function tagsCell(row: ImageRow): string {
  const tags = row.image.repoTags;
  if (tags.length === 0) return '<i>untagged</i>';
  const shown = tags.slice(0, MAX_TAGS).map(code);
  if (tags.length > MAX_TAGS) shown.push(`+${tags.length - MAX_TAGS} more`);
  return shown.join('<br>');
}

/** For rows that are cells already. */
const asIs = (cells: string[]) => cells;

function gateSection(gates: GateReport | undefined): string[] {
  if (!gates || gates.before.length === 0) return [];
  const rows = (phase: string, results: GateResult[]) =>
    results.map((g) => [phase, code(g.container), g.ok ? 'ok' : '<b>FAILED</b>', escapeHtml(g.reason)]);
  return [
    '### Safety gates',
    table(
      ['When', 'Container', 'Result', 'Why'],
      [...rows('before', gates.before), ...rows('after', gates.after ?? [])],
      asIs,
    ),
  ];
}

function failureSection(failures: string[] | undefined): string[] {
  if (!failures || failures.length === 0) return [];
  return ['> [!CAUTION]\n' + failures.map((f) => `> **Failed:** ${escapeHtml(f)}`).join('\n>\n')];
}

/** The summary when a safety gate failed before anything was planned. */
export function renderGatesOnly(mode: string, gates: GateReport): string {
  return (
    [
      `## safe-docker-prune: ${mode === 'prune' ? 'prune' : 'report'} stopped by a safety gate`,
      '**Nothing was removed**: a critical container is not running or not healthy.',
      ...gateSection(gates),
    ].join('\n\n') + '\n'
  );
}

/** Characters of one input's value shown in the summary (the JSON report keeps up to 4,096). */
const MAX_SUMMARY_INPUT = 200;

/**
 * The summary of a run that failed before its pass began (an invalid input, no daemon): the error, that
 * nothing was removed, the inputs given (the one at fault marked), and where the JSON report is or why
 * there is none.
 */
export function renderFailure(
  report: FailureReport,
  written: { file?: string; notWritten?: string },
): string {
  const what = report.mode ?? 'run';
  const invalid = report.error.kind === 'invalid-input';
  const shown = (value: string) =>
    value.length > MAX_SUMMARY_INPUT ? `${value.slice(0, MAX_SUMMARY_INPUT)}…` : value;
  const given = Object.entries(report.inputs).filter(
    ([name, value]) => value !== '' || name === report.error.input,
  );
  return (
    [
      `## safe-docker-prune: ${what} failed before it began`,
      ...failureSection(report.failures),
      invalid
        ? '**Nothing was removed**: every input is checked before the daemon is touched.'
        : '**Nothing was removed**: no Docker daemon answered at the host.',
      '### Inputs given',
      table(['Input', 'Value'], given, ([name, value]) => [
        name === report.error.input ? `<b>${escapeHtml(name)}</b> (invalid)` : escapeHtml(name),
        value === '' ? '<i>empty</i>' : code(shown(value)),
      ]),
      written.file
        ? `JSON report: ${code(written.file)}`
        : `No JSON report was written: ${escapeHtml(written.notWritten ?? 'unknown')}.`,
    ].join('\n\n') + '\n'
  );
}

export function renderSummary(facts: RunFacts, rows: ImageRow[]): string {
  const s = sectionsOf(facts, rows);
  return (
    [
      ...headSection(facts, s),
      ...diskChart(facts, s),
      ...budgetChart(facts, s),
      ...classChart(facts, s),
      ...estimateSection(facts, s),
      ...(s.budget ? budgetSection(s.budget, s.prune) : []),
      ...trendSection(facts),
      ...warningSection(facts.warnings, s.failed),
      ...removedSection(s, facts.nowMs),
      otherImagesSection(s.others, facts.nowMs),
      ...objectSections(s, facts.results !== undefined),
    ].join('\n\n') + '\n'
  );
}

/**
 * The disk holding Docker's data at a glance (a Mermaid pie, which GitHub renders in job summaries): free,
 * what this run frees (measured after a prune, else the estimate) and what stays used. Only with the
 * filesystem's size and free space known (not for a remote daemon).
 */
export function diskChart(facts: RunFacts, s: Sections): string[] {
  const total = facts.diskTotal;
  const before = facts.diskFreeBefore;
  if (!total || before === undefined) return [];
  const after = s.prune ? facts.diskFreeAfter : undefined;
  if (s.prune && after === undefined) return [];
  const frees = Math.min(Math.max(0, after !== undefined ? after - before : s.range.low), total - before);
  const slices: [string, number][] = [
    [s.prune ? 'Free before' : 'Free', before],
    [s.prune ? 'Freed by this run' : 'This run would free', frees],
    ['Used, staying', total - before - frees],
  ];
  const gb = (bytes: number) => (bytes / 1e9).toFixed(2);
  return [
    [
      '```mermaid',
      `pie showData title Disk holding Docker's data, ${formatBytes(total)} (GB)`,
      ...slices.map(([label, bytes]) => `    "${label}" : ${gb(Math.max(0, bytes))}`),
      '```',
    ].join('\n'),
  ];
}

/** The disk forecast and the re-fetches (src/report/trend-lines.ts). */
function trendSection(facts: RunFacts): string[] {
  const lines = [...trendLines(facts.trend), ...unaccountedLines(facts.unaccounted)];
  return lines.length > 0 ? ['### Disk trend', lines.map(escapeHtml).join('<br>\n')] : [];
}

const gb = (bytes: number) => (Math.max(0, bytes) / 1e9).toFixed(2);

/**
 * Free space before and after (after a prune as measured, in a report as the estimate frees it) against
 * the budget's free-space line and target (a Mermaid bar chart with two lines), when the budget has them.
 */
export function budgetChart(facts: RunFacts, s: Sections): string[] {
  const budget = facts.plan.budget;
  const start = budget?.starts.freeSpace?.bytes;
  const target = budget?.targets.freeSpace?.bytes ?? start;
  const total = facts.diskTotal;
  const before = facts.diskFreeBefore;
  if (start === undefined || target === undefined || !total || before === undefined) return [];
  const after = s.prune ? facts.diskFreeAfter : before + s.range.low;
  if (after === undefined) return [];
  const top = Math.max(total, start, target);
  return [
    [
      '```mermaid',
      'xychart-beta',
      `    title "Free space (GB): bars before and ${s.prune ? 'after' : 'after, estimated'}; lines free-space ${gb(start)} and its target ${gb(target)}"`,
      `    x-axis ["Before", "${s.prune ? 'After' : 'After (estimated)'}"]`,
      `    y-axis "GB" 0 --> ${gb(top)}`,
      `    bar [${gb(before)}, ${gb(after)}]`,
      `    line [${gb(start)}, ${gb(start)}]`,
      `    line [${gb(target)}, ${gb(target)}]`,
      '```',
    ].join('\n'),
  ];
}

/**
 * What the run frees by class, when it cleans more than one (a Mermaid pie): after a prune as the daemon
 * measured each class go down, else the estimate.
 */
export function classChart(facts: RunFacts, s: Sections): string[] {
  const before = facts.usageBefore;
  const after = facts.usageAfter;
  const measured = s.prune && after !== undefined;
  const e = facts.plan.estimate;
  const slices: [string, number][] = [
    ['Images', measured ? before.layers - after.layers : e.images],
    ['Containers', measured ? before.containers - after.containers : e.containers],
    ['Volumes', measured ? before.volumes - after.volumes : e.volumes],
    ['Build cache', measured ? before.buildCache - after.buildCache : e.buildCache],
  ];
  const shown = slices.filter(([, bytes]) => bytes > 0);
  if (shown.length < 2) return [];
  const how = measured ? 'freed, measured' : s.prune ? 'freed, estimated' : 'would free, estimated';
  return [
    [
      '```mermaid',
      `pie showData title What this run ${how}, by class (GB)`,
      ...shown.map(([label, bytes]) => `    "${label}" : ${gb(bytes)}`),
      '```',
    ].join('\n'),
  ];
}

/** The title, the headline, the daemon, the runner images, why the run fails and the gates. */
function headSection(facts: RunFacts, s: Sections): string[] {
  return [
    `## ${s.title}`,
    `**${escapeHtml(s.head.action)}** ${escapeHtml(s.head.rest)}`,
    `Daemon ${code(facts.host)}: ${escapeHtml(s.head.daemon)}`,
    ...(s.runner ? [escapeHtml(s.runner)] : []),
    ...failureSection(facts.failures),
    ...gateSection(facts.gates),
  ];
}

/** Estimate and measurement side by side, per class; the method; which figure to trust; a warning note. */
function estimateSection(facts: RunFacts, s: Sections): string[] {
  const { prune, measured } = s;
  const method = facts.plan.estimateMethod;
  const out = [
    table(
      ['', 'Estimated before removing', ...(prune ? ['Measured (Docker’s totals before − after)'] : [])],
      estimateCells(facts, s),
      asIs,
    ),
    `Estimate method: ${code(method.method)}. ${escapeHtml(method.note)}`,
  ];
  if (s.trust) out.push(escapeHtml(s.trust));
  if (prune && measured === undefined) {
    out.push('Measured: unknown (the daemon did not answer after the removals).');
  } else if (prune && measured !== undefined && facts.plan.estimate.total > 0) {
    // The figure the estimate allows: exact, or between the method's bounds.
    const { low, high } = s.range;
    if (measured < low - 0.01 * Math.max(low, 1) || measured > high + 0.01 * Math.max(high, 1)) {
      out.push(
        method.low === undefined
          ? '> [!NOTE]\n> The measurement differs from the estimate by more than 1% (another process may have changed the host meanwhile).'
          : '> [!NOTE]\n> The measurement is outside the estimate’s bounds (another process may have changed the host meanwhile).',
      );
    }
  }
  return out;
}

/** The estimate table's rows: one per class (with what was measured after a prune), then the total. */
function estimateCells(facts: RunFacts, { prune, measured, range }: Sections): string[][] {
  const e = facts.plan.estimate;
  const after = facts.usageAfter;
  // The containerd store before Docker 29 counts containers' and build cache's snapshots in its layer total.
  const inLayers = (key: keyof Usage) =>
    snapshotsInLayersSize(facts.engine) && (key === 'containers' || key === 'buildCache');
  const diff = (key: keyof Usage) =>
    !prune
      ? ''
      : after && facts.measured.includes(key)
        ? inLayers(key)
          ? 'in the images row'
          : formatBytes(facts.usageBefore[key] - after[key])
        : '–';
  const lines: [string, number, keyof Usage][] = [
    ['Images (layers)', e.images, 'layers'],
    ['Containers (writable layers)', e.containers, 'containers'],
    ['Build cache', e.buildCache, 'buildCache'],
    ['Volumes', e.volumes, 'volumes'],
  ];
  const cells = lines.map(([label, bytes, key]) => [
    label,
    formatBytes(bytes),
    ...(prune ? [diff(key)] : []),
  ]);
  const bounds = isBounded(range)
    ? ` (between ${formatBytes(range.low)} and ${formatBytes(range.high)})`
    : '';
  cells.push([
    '<b>Total</b>',
    `<b>${formatBytes(e.total)}</b>${bounds}`,
    ...(prune ? [`<b>${measured === undefined ? 'unknown' : formatBytes(measured)}</b>`] : []),
  ]);
  return cells;
}

/** The budget's lines, and its removals in order (collapsed). */
function budgetSection(budget: NonNullable<Sections['budget']>, prune: boolean): string[] {
  const out = ['### Budget', budget.lines.map((line) => `- ${escapeHtml(line)}`).join('\n')];
  if (budget.steps.length > 0) {
    out.push(
      `<details><summary>${prune ? 'Removals' : 'Would remove'} in budget order (${budget.steps.length})</summary>\n\n` +
        table(['#', 'Kind', 'Object', 'Last used', 'Frees', 'Running total', ''], budget.steps, (cells) =>
          cells.map((c, i) => (i === 2 ? code(c) : i === 6 && c ? `<b>${escapeHtml(c)}</b>` : escapeHtml(c))),
        ) +
        '\n\n</details>',
    );
  }
  return out;
}

/** The run's warnings and the images the daemon failed to remove, capped like the tables. */
function warningSection(warnings: string[], failed: ImageRow[]): string[] {
  if (warnings.length === 0 && failed.length === 0) return [];
  // Every removal can fail (a daemon answering errors): the list is capped like the tables.
  const items: (string | ImageRow)[] = [...warnings, ...failed];
  const shown = firstFitting(
    items,
    (item) =>
      typeof item === 'string'
        ? `- ${escapeHtml(item)}`
        : `- failed to remove ${code(shortId(item.image.id))}: ${escapeHtml(item.message ?? '')}`,
    MAX_WARNINGS,
  );
  if (items.length > shown.length) shown.push(`- ${moreLine(items.length - shown.length)}`);
  return ['### Warnings', shown.join('\n')];
}

/** The images that go, by repository; collapsed past OPEN_ROWS. */
function removedSection(s: Sections, nowMs: number): string[] {
  const title = `### ${s.prune ? 'Removed' : 'Would be removed'} (${s.removed.length})`;
  if (s.removed.length === 0) return [title, 'Nothing.'];
  const list = table(
    ['Repository', 'Tags', 'Image', 'Age', 'Unique', 'Why'],
    s.removedByRepository,
    ([repository, r]) => [
      code(repository),
      tagsCell(r),
      code(shortId(r.image.id)),
      formatAge(r.image.createdMs, nowMs),
      formatBytes(r.uniqueBytes),
      escapeHtml(r.detail),
    ],
  );
  return [
    title,
    s.removed.length > OPEN_ROWS
      ? `<details><summary>By repository (${s.removed.length})</summary>\n\n${list}\n\n</details>`
      : list,
    `<sub>${UNIQUE_NOTE.replace(/^UNIQUE/, 'Unique')}.</sub>`,
  ];
}

/** Kept and other images, with the reason (collapsed). */
function otherImagesSection(others: ImageRow[], nowMs: number): string {
  return (
    `<details><summary>Kept and other images (${others.length})</summary>\n\n` +
    table(['Tags', 'Image', 'Age', 'Unique', 'Reason', 'Detail'], others, (r) => [
      tagsCell(r),
      code(shortId(r.image.id)),
      formatAge(r.image.createdMs, nowMs),
      formatBytes(r.uniqueBytes),
      `<b>${r.state === 'kept' ? escapeHtml(r.reason) : escapeHtml(r.state)}</b>`,
      escapeHtml(r.message ? `${r.detail}: ${r.message}` : r.detail),
    ]) +
    '\n\n</details>'
  );
}

const KIND_TITLES = { container: 'Containers', network: 'Networks', volume: 'Volumes' } as const;

/** Containers, networks and volumes of the classes this run cleans, and the build cache. */
function objectSections(s: Sections, pruned: boolean): string[] {
  const out: string[] = [];
  for (const kind of ['container', 'network', 'volume'] as const) {
    const members = s.objects.filter((r) => r.decision.kind === kind);
    if (members.length === 0) continue;
    const removed = members.filter((r) => r.state === 'removed' || r.state === 'would-remove').length;
    out.push(
      `<details><summary>${KIND_TITLES[kind]}: ${removed} ${pruned ? 'removed' : 'would be removed'}, ${members.length - removed} other(s)</summary>\n\n` +
        table(['Name', 'Size', 'State', 'Reason', 'Detail'], members, (r) => [
          code(r.decision.name),
          formatBytes(r.decision.size),
          escapeHtml(r.state),
          `<b>${escapeHtml(r.decision.reason)}</b>`,
          escapeHtml(r.message ? `${r.decision.detail}: ${r.message}` : r.decision.detail),
        ]) +
        '\n\n</details>',
    );
  }
  if (s.buildCache) out.push(`**Build cache**: ${buildCacheSentence(s.buildCache, escapeHtml)}`);
  return out;
}
