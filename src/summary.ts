// The job summary, as a pure function of the run's facts. Tables are HTML with every user-controlled
// string entity-escaped on one line, so tags, labels and names cannot change the summary's structure.

import type { GateResult } from './gates';
import {
  formatAge,
  formatBytes,
  groupByRepository,
  shortId,
  totalsOf,
  type GateReport,
  type ImageRow,
  type RunFacts,
} from './report';

/** Escapes for HTML text and attributes, plus the characters Markdown would act on. */
export function escapeHtml(text: string): string {
  return text
    .replace(/[\r\n\u2028\u2029]+/g, ' ')
    .replace(/[&<>"'`|*_[\]\\#~!]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Tables stop at this many rows; the JSON report has them all (the summary is capped at 1 MiB). */
const MAX_ROWS = 300;

function table(headers: string[], rows: string[][], total = rows.length): string {
  const head = `<tr>${headers.map((h) => `<th>${h}</th>`).join('')}</tr>`;
  const body = rows
    .slice(0, MAX_ROWS)
    .map((cells) => `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`);
  const more = total > MAX_ROWS ? `\n<p>… and ${total - MAX_ROWS} more (see the JSON report)</p>` : '';
  return `<table>\n${head}\n${body.join('\n')}\n</table>${more}`;
}

const code = (text: string) => `<code>${escapeHtml(text)}</code>`;
const tagsCell = (row: ImageRow) =>
  row.image.repoTags.length > 0 ? row.image.repoTags.map(code).join('<br>') : '<i>untagged</i>';

function gateSection(gates: GateReport | undefined): string[] {
  if (!gates || gates.before.length === 0) return [];
  const rows = (phase: string, results: GateResult[]) =>
    results.map((g) => [phase, code(g.container), g.ok ? 'ok' : '<b>FAILED</b>', escapeHtml(g.reason)]);
  return [
    '### Safety gates',
    table(
      ['When', 'Container', 'Result', 'Why'],
      [...rows('before', gates.before), ...rows('after', gates.after ?? [])],
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

export function renderSummary(facts: RunFacts, rows: ImageRow[]): string {
  const totals = totalsOf(facts, rows);
  const prune = facts.plan.mode === 'prune';
  const out: string[] = [];

  out.push(`## safe-docker-prune: ${prune ? 'prune' : 'report (nothing was removed)'}`);
  const estimate = `${formatBytes(totals.estimatedBytes)}${facts.plan.estimateExact ? '' : ' (approximate)'}`;
  out.push(
    prune
      ? `**Removed ${totals.removed} image(s), reclaimed ${facts.layersSizeAfter === undefined ? 'an unknown amount' : formatBytes(totals.reclaimedBytes)}** (estimated ${estimate}) · kept ${totals.kept}` +
          (totals.failed > 0 ? ` · ${totals.failed} not removed` : '')
      : `**Would remove ${totals.removed} image(s), freeing ${estimate}** · kept ${totals.kept}`,
  );
  out.push(
    `Daemon ${code(facts.host)} (API ${escapeHtml(facts.apiVersion)}) · image layers ${formatBytes(facts.layersSizeBefore)}` +
      (facts.layersSizeAfter === undefined ? '' : ` before, ${formatBytes(facts.layersSizeAfter)} after`) +
      (facts.plan.cutoffMs === undefined
        ? ''
        : ` · candidates created before ${new Date(facts.plan.cutoffMs).toISOString()}`),
  );
  out.push(...failureSection(facts.failures), ...gateSection(facts.gates));
  if (prune && facts.layersSizeAfter === undefined) {
    out.push('Measured: unknown (the daemon did not answer after the removals).');
  } else if (prune) {
    const differs =
      Math.abs(totals.reclaimedBytes - totals.estimatedBytes) > 0.01 * Math.max(totals.estimatedBytes, 1);
    out.push(
      table(
        ['', 'Bytes'],
        [
          ['Estimated before removing', formatBytes(totals.estimatedBytes)],
          ['Measured (image layers before − after)', formatBytes(totals.reclaimedBytes)],
        ],
      ) +
        (differs && totals.estimatedBytes > 0
          ? '\n\n> [!NOTE]\n> The measurement differs from the estimate by more than 1%.'
          : ''),
    );
  }

  const problems = rows.filter((r) => r.state === 'failed' || r.state === 'gone' || r.message);
  if (facts.warnings.length > 0 || problems.some((r) => r.state === 'failed')) {
    out.push('### Warnings');
    out.push(
      [
        ...facts.warnings.map((w) => `- ${escapeHtml(w)}`),
        ...problems
          .filter((r) => r.state === 'failed')
          .map((r) => `- failed to remove ${code(shortId(r.image.id))}: ${escapeHtml(r.message ?? '')}`),
      ].join('\n'),
    );
  }

  const removed = rows.filter(
    (r) => r.state === 'removed' || r.state === 'would-remove' || r.state === 'untagged',
  );
  out.push(`### ${prune ? 'Removed' : 'Would be removed'} (${removed.length})`);
  if (removed.length === 0) out.push('Nothing.');
  else {
    const cells: string[][] = [];
    for (const [repository, members] of groupByRepository(removed)) {
      for (const r of members) {
        cells.push([
          code(repository),
          tagsCell(r),
          code(shortId(r.image.id)),
          formatAge(r.image.created, facts.nowMs),
          formatBytes(r.image.size),
          escapeHtml(r.detail),
        ]);
      }
    }
    out.push(table(['Repository', 'Tags', 'Image', 'Age', 'Size', 'Why'], cells));
  }

  const others = rows.filter((r) => !removed.includes(r));
  const keptCells = others.map((r) => [
    tagsCell(r),
    code(shortId(r.image.id)),
    formatAge(r.image.created, facts.nowMs),
    formatBytes(r.image.size),
    `<b>${r.state === 'kept' ? escapeHtml(r.reason) : escapeHtml(r.state)}</b>`,
    escapeHtml(r.message ? `${r.detail}: ${r.message}` : r.detail),
  ]);
  out.push(
    `<details><summary>Kept and other images (${others.length})</summary>\n\n` +
      table(['Tags', 'Image', 'Age', 'Size', 'Reason', 'Detail'], keptCells) +
      '\n\n</details>',
  );
  return out.join('\n\n') + '\n';
}
