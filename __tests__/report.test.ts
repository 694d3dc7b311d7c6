import { describe, expect, it } from '@jest/globals';
import { removalAnnotations } from '../src/report/annotations';
import type { RunFacts } from '../src/report/facts';
import { estimateRange, totalsOf } from '../src/report/figures';
import { buildReport } from '../src/report/json-report';
import { imageRows } from '../src/report/rows';
import { escapeHtml, renderSummary } from '../src/report/summary';
import { renderTable } from '../src/report/table';
import type { BudgetPlan, ImageDecision, ImageInfo, Plan } from '../src/types';
import { factsOf, planOf } from './support/facts';
import { imageInfo, withLayers } from './support/objects';
import { bytesFreed, uniqueBytes } from '../src/policy/estimate';
import { planRemovals, type Policy } from '../src/policy/plan';
import { parseProtectEntry } from '../src/policy/protect';
import { inventoryOf } from './support/inventory';

const NOW = Date.parse('2026-06-01T00:00:00Z');
let seq = 0;
function image(tags: string[], labels: Record<string, string> = {}): ImageInfo {
  seq++;
  return {
    id: `sha256:${seq.toString(16).padStart(64, 'a')}`,
    repoTags: tags,
    repoDigests: [],
    createdMs: NOW - 3_600_000,
    size: 1000 * seq,
    labels,
    parentId: '',
    layers: [],
    layerSizes: [],
    layerSizesExact: true,
  };
}

function facts(decisions: ImageDecision[], mode: Plan['mode'] = 'report'): RunFacts {
  return factsOf(planOf(decisions, 1234, { mode }), NOW, {
    usageBefore: { layers: 5000, containers: 0, volumes: 0, buildCache: 0 },
  });
}

const remove = (img: ImageInfo): ImageDecision => ({
  image: img,
  action: 'remove',
  reason: 'remove',
  detail: 'unused',
});
const keep = (img: ImageInfo, detail: string): ImageDecision => ({
  image: img,
  action: 'keep',
  reason: 'protected',
  detail,
});

describe('job summary', () => {
  it('renders hostile strings as text, not structure', () => {
    const hostile =
      '</td></table><script>x</script> | `code` **bold** [link](http://x)\n\n# heading\n::error::boom';
    const f = facts([
      keep(image(['evil/app:1'], { l: hostile }), `matches protect entry "${hostile}"`),
      remove(image([])),
    ]);
    const md = renderSummary(f, imageRows(f.plan));
    expect(md).not.toContain('<script>');
    expect(md).not.toContain('</td></table><script>');
    expect(md).not.toContain('\n# heading');
    expect(md).not.toContain('**bold**');
    expect(md).toContain(escapeHtml(hostile));
    // Every table row stays on one line.
    for (const line of md.split('\n').filter((l) => l.startsWith('<tr>'))) expect(line).toMatch(/<\/tr>$/);
  });

  it('escapes every character Markdown or HTML would act on', () => {
    expect(escapeHtml('a|b<c>&`d`\r\ne')).toBe('a&#124;b&#60;c&#62;&#38;&#96;d&#96; e');
  });

  it('says what a report would remove and how many bytes', () => {
    const f = facts([remove(image(['web/api:1'])), keep(image(['db:1']), 'matches protect entry "db"')]);
    const md = renderSummary(f, imageRows(f.plan));
    expect(md).toContain('Would remove 1 image(s), freeing 1.23 kB');
    expect(md).toContain('<code>web/api:1</code>');
    expect(md).toMatch(/<b>protected<\/b><\/td><td>matches protect entry &#34;db&#34;/);
  });

  it('a conflict in prune mode turns into kept, in use', () => {
    const img = image(['app:1']);
    const f = facts([remove(img)], 'prune');
    f.results = [
      { id: img.id, status: 'conflict', message: 'container abc is using it', deleted: [], untagged: [] },
    ];
    const [row] = imageRows(f.plan, f.results);
    expect(row).toMatchObject({ state: 'kept', reason: 'in-use', message: 'container abc is using it' });
  });

  it('an image that is already gone is not counted as removed', () => {
    const img = image(['app:1']);
    const f = facts([remove(img)], 'prune');
    f.results = [{ id: img.id, status: 'gone', deleted: [], untagged: [] }];
    expect(imageRows(f.plan, f.results)[0].state).toBe('gone');
  });
});

describe('a bounded estimate (containerd store, content store unreadable)', () => {
  /** Images bounded between 400 and 1,000 bytes; a removed container adds 50 to every figure. */
  function bounded(mode: Plan['mode']): RunFacts {
    const f = facts([remove(image([]))], mode);
    f.plan.estimate = { images: 400, containers: 50, volumes: 0, buildCache: 0, total: 450 };
    f.plan.estimatedBytes = 400;
    f.plan.estimateMethod = {
      method: 'layer-graph+content-bounded',
      exact: false,
      low: 400,
      high: 1000,
      note: 'Bounded.',
    };
    f.engine = { ...f.engine, version: '29.7.2', imageStore: 'containerd' };
    return f;
  }

  it('the whole plan’s range: the other classes plus the image bounds', () => {
    expect(estimateRange(bounded('report').plan)).toEqual({ low: 450, high: 1050 });
    // Exact: both ends are the estimate.
    expect(estimateRange(facts([]).plan)).toEqual({ low: 1234, high: 1234 });
  });

  it('totals and the JSON report carry both ends; estimatedBytes is the low end', () => {
    const f = bounded('report');
    const totals = totalsOf(f, imageRows(f.plan));
    expect(totals).toMatchObject({ estimatedBytes: 450, estimatedBytesLow: 450, estimatedBytesHigh: 1050 });
    expect(buildReport(f, imageRows(f.plan)).totals).toMatchObject({
      estimatedBytesLow: 450,
      estimatedBytesHigh: 1050,
      estimateExact: false,
    });
    const exact = facts([]);
    expect(totalsOf(exact, [])).toMatchObject({ estimatedBytesLow: 1234, estimatedBytesHigh: 1234 });
  });

  it('the summary shows the range beside the estimate and says which figure to trust', () => {
    const f = bounded('report');
    const md = renderSummary(f, imageRows(f.plan));
    expect(md).toContain('<b>450 B</b> (between 450 B and 1.05 kB)');
    expect(md).toContain('Which figure to trust: 450 B is certainly freed and 1.05 kB at most');
    expect(md).toContain('Would remove 1 image(s), freeing 450 B–1.05 kB');
  });

  it('after a prune the summary trusts the measured figure', () => {
    const f = bounded('prune');
    f.results = [{ id: f.plan.images[0].image.id, status: 'removed', deleted: [], untagged: [] }];
    f.usageAfter = { ...f.usageBefore, layers: f.usageBefore.layers - 700 };
    const md = renderSummary(f, imageRows(f.plan, f.results));
    expect(md).toContain('Which figure to trust: the measured 700 B');
    expect(md).toContain('could only say between 450 B and 1.05 kB');
    expect(md).not.toContain('outside the estimate’s bounds');
    f.usageAfter = { ...f.usageBefore, layers: f.usageBefore.layers - 2000 };
    expect(renderSummary(f, imageRows(f.plan, f.results))).toContain('outside the estimate’s bounds');
  });

  it('an exact estimate says nothing of ranges', () => {
    const f = facts([remove(image([]))]);
    const md = renderSummary(f, imageRows(f.plan));
    expect(md).not.toContain('Which figure to trust');
    expect(md).not.toContain('between');
    expect(renderTable(f, imageRows(f.plan))).not.toContain('Which figure to trust');
  });

  it('the command’s table says it too', () => {
    const f = bounded('report');
    expect(renderTable(f, imageRows(f.plan))).toContain(
      'Which figure to trust: 450 B is certainly freed and 1.05 kB at most',
    );
  });
});

describe('pull request annotations', () => {
  it.each([1, 9, 10, 11, 40])('%i repositories give at most 10 notices that name every image', (repos) => {
    const decisions = Array.from({ length: repos }, (_, i) =>
      remove(image([`team/repo${i}:v1`, `team/repo${i}:v2`])),
    );
    const notes = removalAnnotations(imageRows(facts(decisions).plan));
    expect(notes.length).toBe(Math.min(repos, 10));
    const text = notes.map((n) => `${n.title} ${n.message}`).join('\n');
    for (let i = 0; i < repos; i++) expect(text).toMatch(new RegExp(`team/repo${i}\\b`));
    if (repos > 10) expect(notes[9].title).toContain(`${repos - 9} more image(s)`);
  });
});

describe('the size column: what removing that image alone frees', () => {
  const base: [string, number] = ['sha256:base', 5_000_000];
  const a = imageInfo({
    id: 'sha256:a',
    repoTags: ['app/a:1'],
    ...withLayers([base, ['sha256:a1', 300_000]]),
  });
  const b = imageInfo({
    id: 'sha256:b',
    repoTags: ['app/b:1'],
    ...withLayers([base, ['sha256:b1', 200_000]]),
  });
  const solo = imageInfo({
    id: 'sha256:solo',
    repoTags: ['app/solo:1'],
    ...withLayers([['sha256:solo1', 70_000]]),
    blobs: [{ key: 'config-solo', size: 1_000 }],
  });
  const all = [a, b, solo];

  it('is each image’s unique bytes, as bytesFreed gives for it alone; shared layers count in none', () => {
    const unique = uniqueBytes(all);
    for (const image of all) {
      expect(unique.get(image.id)).toBe(
        bytesFreed(
          [image],
          all.filter((other) => other !== image),
        ),
      );
    }
    expect([...unique.values()]).toEqual([300_000, 200_000, 71_000]);
  });

  it('is the UNIQUE column of the table and the summary and uniqueBytes in the JSON report; size stays whole', () => {
    const f = facts([remove(a), remove(b), remove(solo)]);
    const rows = imageRows(f.plan);
    const table = renderTable(f, rows);
    expect(table).toMatch(/IMAGE\s+TAGS\s+AGE\s+UNIQUE\s+WHY/);
    expect(table).toMatch(/app\/a:1\s+\S+\s+300\.0 kB/);
    expect(table).toContain('UNIQUE: bytes no other image shares');
    expect(table).not.toContain('5.30 MB');
    expect(renderSummary(f, rows)).toContain('<th>Unique</th>');
    const entries = buildReport(f, rows).images as { tags: string[]; size: number; uniqueBytes: number }[];
    expect(entries.map((e) => [e.tags[0], e.size, e.uniqueBytes])).toEqual([
      ['app/a:1', 5_300_000, 300_000],
      ['app/b:1', 5_200_000, 200_000],
      ['app/solo:1', 70_000, 71_000],
    ]);
  });
});

describe('the command’s kept list past a screenful', () => {
  const keep = (img: ImageInfo, reason: ImageDecision['reason']): ImageDecision => ({
    image: img,
    action: 'keep',
    reason,
    detail: `kept: ${reason}`,
  });

  it('is one line per reason, most first, with a count, the unique bytes and a few names', () => {
    const kept = [
      ...Array.from({ length: 30 }, (_, i) => keep(image([`app/recent:${i}`]), 'keep-recent')),
      ...Array.from({ length: 11 }, (_, i) => keep(image([`app/used:${i}`]), 'in-use')),
    ];
    const f = facts(kept);
    const table = renderTable(f, imageRows(f.plan));
    expect(table).toContain('Kept and other images (41), by reason');
    const lines = table.split('\n');
    const at = lines.findIndex((l) => /REASON\s+IMAGES\s+UNIQUE\s+FOR EXAMPLE/.test(l));
    expect(lines[at + 1]).toMatch(
      /^ {2}keep-recent\s+30\s+0 B\s+app\/recent:0, app\/recent:1, app\/recent:2, … 27 more$/,
    );
    expect(lines[at + 2]).toMatch(
      /^ {2}in-use\s+11\s+0 B\s+app\/used:0, app\/used:1, app\/used:2, … 8 more$/,
    );
    expect(table).not.toContain('kept: keep-recent');
  });

  it('lists each image with its detail up to a screenful', () => {
    const kept = Array.from({ length: 40 }, (_, i) => keep(image([`app/recent:${i}`]), 'keep-recent'));
    const f = facts(kept);
    const table = renderTable(f, imageRows(f.plan));
    expect(table).toContain('Kept and other images (40)\n');
    expect(table.split('\n').filter((l) => l.includes('kept: keep-recent'))).toHaveLength(40);
  });
});

describe('untagged parents that go with an image: folded into its row, counted apart', () => {
  // A legacy build: app:1 on two untagged parents, each a layer more; tool:1 shares the bottom layer.
  const L1: [string, number] = ['sha256:l1', 1_000_000];
  const L2: [string, number] = ['sha256:l2', 200_000];
  const L3: [string, number] = ['sha256:l3', 30_000];
  const p1 = imageInfo({ id: 'sha256:p1', ...withLayers([L1]) });
  const p2 = imageInfo({ id: 'sha256:p2', parentId: p1.id, ...withLayers([L1, L2]) });
  const app = imageInfo({
    id: 'sha256:app',
    repoTags: ['app:1'],
    parentId: p2.id,
    ...withLayers([L1, L2, L3]),
  });
  const tool = imageInfo({ id: 'sha256:tool', repoTags: ['tool:1'], ...withLayers([L1, ['sha256:t', 5]]) });
  const policy: Policy = {
    mode: 'report',
    images: 'unused',
    protect: [parseProtectEntry('tool')],
    keepRecent: 0,
  };
  const plan = planRemovals(inventoryOf([p1, p2, app, tool]), policy, NOW);

  it('shows one row for the image, with its parents’ bytes, and counts them apart in the headline', () => {
    expect(plan.cascade.sort()).toEqual([p1.id, p2.id].sort());
    const f = factsOf(plan, NOW);
    const rows = imageRows(plan);
    const table = renderTable(f, rows);
    expect(table).toContain('Would remove 1 image(s) (+2 untagged parent image(s)), freeing 230.0 kB');
    expect(table).toContain('Would remove (1 images)');
    // L1 stays with tool:1; L2 and L3 go with app:1 and its parents.
    expect(table).toMatch(/app:1\s+\S+\s+230\.0 kB\s+.*; \+2 untagged parent images with it/);
    expect(renderSummary(f, rows)).toContain('### Would be removed (1)');
    // The JSON report still lists every image with its own state.
    expect((buildReport(f, rows).images as { id: string }[]).map((i) => i.id).sort()).toEqual(
      [p1.id, p2.id, app.id, tool.id].sort(),
    );
  });
});

describe('untagged parents kept for an image: folded into its kept row', () => {
  const tp = imageInfo({ id: 'sha256:tp', ...withLayers([['sha256:t0', 1_000]]) });
  const tool = imageInfo({
    id: 'sha256:tool',
    repoTags: ['tool:1'],
    parentId: tp.id,
    ...withLayers([
      ['sha256:t0', 1_000],
      ['sha256:t1', 20],
    ]),
  });
  const policy: Policy = {
    mode: 'report',
    images: 'unused',
    protect: [parseProtectEntry('tool')],
    keepRecent: 0,
  };
  const plan = planRemovals(inventoryOf([tp, tool]), policy, NOW);

  it('one kept row, the parent counted apart', () => {
    expect(plan.images.map((d) => [d.image.id, d.action, d.reason])).toEqual([
      [tp.id, 'keep', 'parent'],
      [tool.id, 'keep', 'protected'],
    ]);
    const table = renderTable(factsOf(plan, NOW), imageRows(plan));
    expect(table).toContain('kept 1 image(s) (+1 untagged parent image(s))');
    expect(table).toContain('Kept and other images (1)');
    expect(table).toMatch(/tool:1\s+\S+\s+1\.02 kB\s+protected\s+.*; \+1 untagged parent image with it/);
  });
});

describe('the disk at a glance: a Mermaid pie in the job summary', () => {
  const GB = 1e9;

  it('report mode: free, what the run would free, what stays used', () => {
    const f = facts([remove(image(['app/old:1']))]);
    f.diskTotal = 100 * GB;
    f.diskFreeBefore = 20 * GB;
    f.plan.estimate = { images: 5 * GB, containers: 0, volumes: 0, buildCache: 0, total: 5 * GB };
    expect(renderSummary(f, imageRows(f.plan))).toContain(
      [
        '```mermaid',
        "pie showData title Disk holding Docker's data, 100.0 GB (GB)",
        '    "Free" : 20.00',
        '    "This run would free" : 5.00',
        '    "Used, staying" : 75.00',
        '```',
      ].join('\n'),
    );
  });

  it('prune mode: what the filesystem measured after, not the estimate', () => {
    const f = facts([remove(image(['app/old:1']))], 'prune');
    f.diskTotal = 100 * GB;
    f.diskFreeBefore = 20 * GB;
    f.diskFreeAfter = 23.5 * GB;
    const summary = renderSummary(f, imageRows(f.plan, []));
    expect(summary).toContain('"Free before" : 20.00');
    expect(summary).toContain('"Freed by this run" : 3.50');
    expect(summary).toContain('"Used, staying" : 76.50');
  });

  it('with a free-space budget: free before and after as bars against the line and its target', () => {
    const f = facts([remove(image(['app/old:1']))], 'prune');
    f.diskTotal = 100 * GB;
    f.diskFreeBefore = 12 * GB;
    f.diskFreeAfter = 27.5 * GB;
    const budget = (lines: Pick<BudgetPlan, 'starts' | 'targets'>): BudgetPlan => ({
      ...lines,
      triggeredBy: ['free-space'],
      before: { freeBytes: 12 * GB, totalBytes: 100 * GB, usage: 50 * GB },
      needBytes: 13 * GB,
      metAtStart: false,
      steps: [],
      notNeeded: 0,
      shortfallBytes: 0,
      holding: [],
      unmeasurable: [],
    });
    f.plan.budget = budget({
      starts: { freeSpace: { text: '15GB', bytes: 15 * GB } },
      targets: { freeSpace: { text: '25GB', bytes: 25 * GB } },
    });
    expect(renderSummary(f, imageRows(f.plan, []))).toContain(
      [
        '```mermaid',
        'xychart-beta',
        '    title "Free space (GB): bars before and after; lines free-space 15.00 and its target 25.00"',
        '    x-axis ["Before", "After"]',
        '    y-axis "GB" 0 --> 100.00',
        '    bar [12.00, 27.50]',
        '    line [15.00, 15.00]',
        '    line [25.00, 25.00]',
        '```',
      ].join('\n'),
    );
    // Without a free-space line (an inode budget, max-usage), none.
    f.plan.budget = budget({
      starts: { maxUsage: { text: '40GB', bytes: 40 * GB } },
      targets: { maxUsage: { text: '40GB', bytes: 40 * GB } },
    });
    expect(renderSummary(f, imageRows(f.plan, []))).not.toContain('xychart');
  });

  it('what the run frees by class, when it cleans more than one: estimated, or measured after a prune', () => {
    const f = facts([remove(image(['app/old:1']))]);
    f.plan.estimate = {
      images: 5 * GB,
      containers: 0.5 * GB,
      volumes: 0,
      buildCache: 2 * GB,
      total: 7.5 * GB,
    };
    expect(renderSummary(f, imageRows(f.plan))).toContain(
      [
        '```mermaid',
        'pie showData title What this run would free, estimated, by class (GB)',
        '    "Images" : 5.00',
        '    "Containers" : 0.50',
        '    "Build cache" : 2.00',
        '```',
      ].join('\n'),
    );
    const p = facts([remove(image(['app/old:1']))], 'prune');
    p.usageBefore = { layers: 9 * GB, containers: GB, volumes: 0, buildCache: 3 * GB };
    p.usageAfter = { layers: 5 * GB, containers: GB, volumes: 0, buildCache: 1 * GB };
    const summary = renderSummary(p, imageRows(p.plan, []));
    expect(summary).toContain('pie showData title What this run freed, measured, by class (GB)');
    expect(summary).toContain('"Images" : 4.00\n    "Build cache" : 2.00\n```');
    // One class only: the disk pie says it all.
    f.plan.estimate = { images: 5 * GB, containers: 0, volumes: 0, buildCache: 0, total: 5 * GB };
    expect(renderSummary(f, imageRows(f.plan))).not.toContain('by class');
  });

  it('none where the disk cannot be measured (a remote daemon) or was not measured after a prune', () => {
    const remote = facts([]);
    expect(renderSummary(remote, [])).not.toContain('mermaid');
    const pruned = facts([], 'prune');
    pruned.diskTotal = 100 * GB;
    pruned.diskFreeBefore = 20 * GB;
    expect(renderSummary(pruned, [])).not.toContain('mermaid');
  });
});
