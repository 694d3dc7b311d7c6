// Telling, as pure functions: what happened to each image, the JSON report, the annotations.

import type { GateResult } from './gates';
import { repositoryOf } from './protect';
import type { ImageDecision, ImageInfo, ImageReason, Plan, RemovalResult } from './types';

/** `untagged`: a parent image lost its tags but stays for the child images built on it. */
export type FinalState = 'removed' | 'untagged' | 'would-remove' | 'kept' | 'gone' | 'failed';

export interface ImageRow {
  image: ImageInfo;
  state: FinalState;
  reason: ImageReason;
  detail: string;
  /** What the daemon said, for conflicts and failures. */
  message?: string;
}

export interface RunFacts {
  plan: Plan;
  /** Undefined in report mode. */
  results?: RemovalResult[];
  host: string;
  apiVersion: string;
  nowMs: number;
  layersSizeBefore: number;
  /** Prune mode: measured LayersSize after the removals. */
  layersSizeAfter?: number;
  timings: Record<string, number>;
  warnings: string[];
  gates?: GateReport;
  /** Why the step fails, if it does. */
  failures?: string[];
}

export interface GateReport {
  before: GateResult[];
  after?: GateResult[];
}

/** Each image's final state: the plan's decision combined with what the daemon answered. */
export function imageRows(plan: Plan, results?: RemovalResult[]): ImageRow[] {
  const byId = new Map((results ?? []).map((r) => [r.id, r]));
  const deleted = new Set((results ?? []).flatMap((r) => r.deleted));
  const cascade = new Set(plan.cascade);
  return plan.images.map((d: ImageDecision): ImageRow => {
    const row = { image: d.image, reason: d.reason, detail: d.detail };
    if (d.action === 'keep') return { ...row, state: 'kept' };
    if (!results) return { ...row, state: 'would-remove' };
    if (cascade.has(d.image.id)) {
      return deleted.has(d.image.id)
        ? { ...row, state: 'removed' }
        : {
            ...row,
            state: 'kept',
            detail: 'untagged parent that Docker kept (another child or reference remains)',
          };
    }
    const result = byId.get(d.image.id);
    switch (result?.status) {
      case 'removed':
        return { ...row, state: 'removed' };
      case 'untagged':
        return { ...row, state: 'untagged' };
      case 'gone':
        return { ...row, state: 'gone', message: result.message };
      case 'conflict':
        // A container (or a reference) appeared since the plan: the daemon refused, the image stays.
        return {
          ...row,
          state: 'kept',
          reason: 'in-use',
          detail: 'in use since the plan',
          message: result.message,
        };
      case 'error':
        return { ...row, state: 'failed', message: result.message };
      default:
        return { ...row, state: 'failed', message: 'not attempted' };
    }
  });
}

export interface Totals {
  /** Image IDs removed (prune) or that would be removed (report). */
  removed: number;
  /** Parent images whose tags were removed while child images keep them. */
  untagged: number;
  kept: number;
  gone: number;
  failed: number;
  estimatedBytes: number;
  reclaimedBytes: number;
}

export function totalsOf(facts: RunFacts, rows: ImageRow[]): Totals {
  const count = (...states: FinalState[]) => rows.filter((r) => states.includes(r.state)).length;
  return {
    removed: facts.results
      ? count('removed')
      : rows.filter((r) => r.state === 'would-remove' && !facts.plan.untagOnly.includes(r.image.id)).length,
    untagged: facts.results
      ? count('untagged')
      : rows.filter((r) => facts.plan.untagOnly.includes(r.image.id)).length,
    kept: count('kept'),
    gone: count('gone'),
    failed: count('failed'),
    estimatedBytes: facts.plan.estimatedBytes,
    reclaimedBytes: facts.layersSizeAfter === undefined ? 0 : facts.layersSizeBefore - facts.layersSizeAfter,
  };
}

/** The JSON report: every image with its decision and reason, and the totals. */
export function buildReport(facts: RunFacts, rows: ImageRow[]) {
  return {
    version: 1,
    mode: facts.plan.mode,
    generatedAt: new Date(facts.nowMs).toISOString(),
    daemon: { host: facts.host, apiVersion: facts.apiVersion },
    totals: { ...totalsOf(facts, rows), estimateExact: facts.plan.estimateExact },
    layersSizeBefore: facts.layersSizeBefore,
    layersSizeAfter: facts.layersSizeAfter ?? null,
    cutoff: facts.plan.cutoffMs === undefined ? null : new Date(facts.plan.cutoffMs).toISOString(),
    unmatchedProtect: facts.plan.unmatchedProtect,
    warnings: facts.warnings,
    failures: facts.failures ?? [],
    gates: facts.gates ?? { before: [] },
    images: rows.map((r) => ({
      id: r.image.id,
      tags: r.image.repoTags,
      created: new Date(r.image.created * 1000).toISOString(),
      size: r.image.size,
      labels: r.image.labels,
      state: r.state,
      reason: r.reason,
      detail: r.detail,
      ...(r.message ? { message: r.message } : {}),
    })),
    timings: facts.timings,
  };
}

/** Repository an image is listed under: that of its first tag as people write it, or `<untagged>`. */
export function repositoryKey(image: ImageInfo): string {
  if (image.repoTags.length === 0) return '<untagged>';
  return repositoryOf(image.repoTags[0]).replace(/^docker\.io\/(library\/)?/, '');
}

export function groupByRepository(rows: ImageRow[]): [string, ImageRow[]][] {
  const groups = new Map<string, ImageRow[]>();
  for (const row of rows) {
    const key = repositoryKey(row.image);
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b));
}

export interface Annotation {
  title: string;
  message: string;
}

/** Notices for a pull request: one per repository, rolled up so that there are at most `limit`. */
export function removalAnnotations(rows: ImageRow[], limit = 10): Annotation[] {
  const groups = groupByRepository(rows.filter((r) => r.state === 'would-remove'))
    .map(([repository, members]) => ({
      repository,
      members,
      bytes: members.reduce((n, r) => n + r.image.size, 0),
    }))
    .sort((a, b) => b.bytes - a.bytes || a.repository.localeCompare(b.repository));
  const describe = (members: ImageRow[]) =>
    members
      .map((r) => (r.image.repoTags.length > 0 ? r.image.repoTags.join(' ') : shortId(r.image.id)))
      .join(', ');
  const shown = groups.length > limit ? groups.slice(0, limit - 1) : groups;
  const notes = shown.map((g) => ({
    title: `Would remove ${g.members.length} image(s) of ${g.repository}`,
    message: `${describe(g.members)} (${formatBytes(g.bytes)} in Docker's image sizes)`,
  }));
  const rest = groups.slice(shown.length);
  if (rest.length > 0) {
    const count = rest.reduce((n, g) => n + g.members.length, 0);
    notes.push({
      title: `Would remove ${count} more image(s) in ${rest.length} more repositories`,
      message: rest.map((g) => `${g.repository} (${g.members.length})`).join(', '),
    });
  }
  return notes;
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** Decimal units, as Docker prints them. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

export function formatAge(createdSeconds: number, nowMs: number): string {
  const minutes = Math.max(0, Math.floor((nowMs / 1000 - createdSeconds) / 60));
  if (minutes < 60) return `${minutes}m`;
  if (minutes < 48 * 60) return `${Math.floor(minutes / 60)}h`;
  return `${Math.floor(minutes / 1440)}d`;
}
