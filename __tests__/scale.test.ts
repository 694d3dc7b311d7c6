// The job summary, the pull-request comment and the annotations on huge hosts, built through the path the
// action takes (inventory -> plan -> rows -> render): within GitHub's limits, totals before any long
// list, and every cut list saying how many more there are.
import { describe, expect, it } from '@jest/globals';
import { planRemovals, type Policy } from '../src/policy/plan';
import { commentMarker, renderComment } from '../src/report/comment';
import { removalAnnotations } from '../src/report/annotations';
import type { RunFacts } from '../src/report/facts';
import { imageRows, type ImageRow } from '../src/report/rows';
import { renderSummary } from '../src/report/summary';
import type { ImageInfo, Inventory, RemovalResult } from '../src/types';
import { factsOf as runFacts } from './support/facts';
import { inventoryOf } from './support/inventory';
import { DAY_MS, hexOf, imageInfo, withLayers } from './support/objects';

const NOW = Date.parse('2026-06-01T00:00:00Z');
/** GitHub's limits: a job summary per step (bytes), a comment body (characters), an annotation's message. */
const SUMMARY_LIMIT = 1_048_576;
const SUMMARY_MARGIN = 900 * 1024;
const COMMENT_LIMIT = 65_536;
const ANNOTATION_MESSAGE_LIMIT = 4096;

function image(key: string, tags: string[], ageDays: number, size: number): ImageInfo {
  return imageInfo({
    id: `sha256:${hexOf(key)}`,
    repoTags: tags,
    createdMs: NOW - ageDays * DAY_MS,
    ...withLayers([[`sha256:${hexOf(`layer-${key}`)}`, size]]),
  });
}

/** 20,000 images over 500 repositories, 40 each; keep-recent 2 keeps 1,000, the other 19,000 go. */
function hugeFleet(): ImageInfo[] {
  return Array.from({ length: 20_000 }, (_, i) => {
    const repo = `team-${i % 500}/service-${i % 500}`;
    return image(`huge-${i}`, [`${repo}:build-${i}`], 10 + Math.floor(i / 500), 1_000_000 + i);
  });
}

/**
 * 300 images over 100 repositories, each repository name 200 characters (Docker allows 255) and each
 * image with 40 tags of 128 characters (Docker's maximum) that contain underscores, which the summary
 * escapes; keep-recent 1 keeps 100, 200 go.
 */
const LONG_REPOS = 100;
function longNameFleet(): ImageInfo[] {
  const repo = (r: number) =>
    `registry.example.com/${`platform-team-${r}/`.padEnd(60, 'x')}/${'service'.padEnd(117, 's')}`;
  return Array.from({ length: 300 }, (_, i) => {
    const name = repo(i % LONG_REPOS);
    const tags = Array.from(
      { length: 40 },
      (_, t) => `${name}:${`v${i}_${t}_feature_branch_build_`.padEnd(128, 'z')}`,
    );
    return image(`long-${i}`, tags, 10 + Math.floor(i / LONG_REPOS), 50_000_000 + i);
  });
}

function factsOf(inventory: Inventory, policy: Policy): RunFacts {
  return runFacts(planRemovals(inventory, policy, NOW), NOW, {
    host: 'unix:///var/run/docker.sock',
    engine: inventory.engine,
    usageBefore: inventory.usage,
    diskFreeBefore: 10_000_000_000,
  });
}

const policy = (keepRecent: number, mode: Policy['mode'] = 'report'): Policy => ({
  mode,
  images: 'unused',
  protect: [],
  keepRecent,
});

/** Prune mode where every removal failed (a daemon answering 500 to each): the worst case for warnings. */
function allFailed(facts: RunFacts): RunFacts {
  const results: RemovalResult[] = facts.plan.images
    .filter((d) => d.action === 'remove')
    .map((d) => ({
      id: d.image.id,
      status: 'error',
      message: `Error response from daemon: failed to remove ${d.image.repoTags[0] ?? d.image.id}: device or resource busy`,
      deleted: [],
      untagged: [],
    }));
  return { ...facts, results, usageAfter: facts.usageBefore };
}

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');
const countOf = (text: string, needle: string) => text.split(needle).length - 1;

/** Every long list is cut with a line naming how many more; returns those counts, in order. */
const moreNotes = (text: string) =>
  [...text.matchAll(/… and (\d+) more\b[^\n]*the JSON report/g)].map((m) => Number(m[1]));

function expectWithinLimits(summary: string, comment: string) {
  expect(bytes(summary)).toBeLessThanOrEqual(SUMMARY_MARGIN);
  expect(bytes(summary)).toBeLessThan(SUMMARY_LIMIT);
  expect(comment.length).toBeLessThanOrEqual(COMMENT_LIMIT);
  // Every table row stays on one line.
  for (const line of summary.split('\n').filter((l) => l.startsWith('<tr>'))) expect(line).toMatch(/<\/tr>$/);
}

/** The headline and the estimate table come before the first collapsed list and the first image row. */
function expectTotalsFirst(summary: string, headline: RegExp, firstRow: string) {
  const head = summary.search(headline);
  expect(head).toBeGreaterThan(0);
  expect(head).toBeLessThan(summary.indexOf('<details>'));
  expect(summary.indexOf('<b>Total</b>')).toBeLessThan(summary.indexOf('<details>'));
  expect(summary.indexOf('<b>Total</b>')).toBeLessThan(summary.indexOf(firstRow));
}

/** Each list that is cut ends with the number of rows it leaves out. */
function expectCutCounts(summary: string, lists: [title: string, total: number][]) {
  const left = lists.map(([title, total]) => {
    const section = summary.slice(summary.indexOf(title));
    const shown = countOf(section.slice(0, section.indexOf('</table>')), '<tr><td>');
    expect(shown).toBeGreaterThan(0);
    return total - shown;
  });
  expect(moreNotes(summary)).toEqual(left.filter((n) => n > 0));
}

/** Prune mode where every removal failed: within the limits, the warnings cut with how many more. */
function expectFailuresCut(facts: RunFacts, total: number, padding = ''): string {
  const failed = allFailed({ ...facts, plan: { ...facts.plan, mode: 'prune' } });
  for (const r of failed.results ?? []) r.message = `${r.message}${padding}`;
  const rows = imageRows(failed.plan, failed.results);
  const text = renderSummary(failed, rows);
  expectWithinLimits(text, renderComment(failed, rows, 'M'));
  expect(text).toContain(`${total} not removed`);
  const listed = countOf(text, '- failed to remove ');
  expect(listed).toBeGreaterThan(0);
  expect(text).toContain(`- … and ${total - listed} more, not shown here (the JSON report has them all)`);
  return text;
}

/** At most 10 notices, each within what the runner and GitHub keep. */
function expectAnnotationsWithinLimits(rows: ImageRow[]) {
  const notes = removalAnnotations(rows);
  expect(notes).toHaveLength(10);
  for (const note of notes) {
    expect(note.message.length).toBeLessThanOrEqual(ANNOTATION_MESSAGE_LIMIT);
    expect(note.title.length).toBeLessThanOrEqual(255);
  }
  return notes;
}

/** The fleet planned and rendered as the action does. */
function rendered(images: ImageInfo[], keepRecent: number) {
  const facts = factsOf(inventoryOf(images), policy(keepRecent));
  const rows = imageRows(facts.plan);
  const summary = renderSummary(facts, rows);
  const comment = renderComment(facts, rows, commentMarker('CI', 'cleanup'));
  return { facts, rows, summary, comment };
}

describe('20,000 images, 19,000 removable', () => {
  const { facts, rows, summary, comment } = rendered(hugeFleet(), 2);

  it('stays within GitHub’s limits', () => expectWithinLimits(summary, comment));

  it('gives the totals before any list, and collapses the lists', () => {
    expectTotalsFirst(summary, /\*\*Would remove 19000 image\(s\), freeing /, '<code>team-');
    expect(summary).toContain('kept 1000 image(s)');
    expect(summary).toContain(
      '### Would be removed (19000)\n\n<details><summary>By repository (19000)</summary>',
    );
    expect(summary).toContain('<details><summary>Kept and other images (1000)</summary>');
    expect(comment).toContain('**Would remove 19000 image(s), freeing ');
    expect(comment).toContain('(5 of 19000)');
  });

  it('says how many rows each cut list leaves out, and that the JSON report has them', () => {
    expectCutCounts(summary, [
      ['Would be removed (19000)', 19_000],
      ['Kept and other images (1000)', 1_000],
    ]);
    expect(moreNotes(summary)).toHaveLength(2);
  });

  it('keeps the warnings list short when every removal failed', () => {
    expectFailuresCut(facts, 19_000);
  });

  it('rolls the annotations up to 10, each message within what the runner keeps', () => {
    const notes = expectAnnotationsWithinLimits(rows);
    expect(notes[9].title).toBe('Would remove 18658 more image(s) in 491 more repositories');
    expect(notes[9].message).toMatch(/… and \d+ more repositories \(see the JSON report\)$/);
  });
});

describe('300 images with 200-character repositories and 40 tags of 128 characters each', () => {
  const { facts, rows, summary, comment } = rendered(longNameFleet(), 1);

  it('stays within GitHub’s limits', () => expectWithinLimits(summary, comment));

  it('gives the totals before any list', () => {
    expectTotalsFirst(summary, /\*\*Would remove 200 image\(s\), freeing /, '<code>registry');
  });

  it('caps the tags of a cell with “+N more”', () => {
    const cells =
      summary.match(/<td>(?:<code>[^<]*<\/code><br>)*<code>[^<]*<\/code>(?:<br>\+\d+ more)?<\/td>/g) ?? [];
    expect(cells.length).toBeGreaterThan(0);
    for (const cell of cells) expect(countOf(cell, '<code>')).toBeLessThan(40);
    expect(summary).toMatch(/<br>\+35 more<\/td>/);
    expect(comment).toContain(' +37 more');
  });

  it('says how many images each cut list leaves out', () => {
    expectCutCounts(summary, [
      ['Would be removed (200)', 200],
      ['Kept and other images (100)', 100],
    ]);
  });

  it('stays within the limits when every removal failed with a long daemon message', () => {
    expectFailuresCut(facts, 200, ` ${'_'.repeat(2000)}`);
  });

  it('keeps each annotation within what the runner keeps', () => {
    expectAnnotationsWithinLimits(rows);
  });
});
