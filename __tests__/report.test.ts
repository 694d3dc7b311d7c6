import { describe, expect, it } from '@jest/globals';
import { imageRows, removalAnnotations, type RunFacts } from '../src/report/report';
import { escapeHtml, renderSummary } from '../src/report/summary';
import type { ImageDecision, ImageInfo, Plan } from '../src/types';

const NOW = Date.parse('2026-06-01T00:00:00Z');
let seq = 0;
function image(tags: string[], labels: Record<string, string> = {}): ImageInfo {
  seq++;
  return {
    id: `sha256:${seq.toString(16).padStart(64, 'a')}`,
    repoTags: tags,
    repoDigests: [],
    created: NOW / 1000 - 3600,
    size: 1000 * seq,
    labels,
    parentId: '',
    layers: [],
    layerSizes: [],
    layerSizesExact: true,
  };
}

function facts(decisions: ImageDecision[], mode: Plan['mode'] = 'report'): RunFacts {
  const plan: Plan = {
    mode,
    images: decisions,
    cascade: [],
    noPrune: [],
    untagOnly: [],
    objects: [],
    estimate: { images: 1234, containers: 0, volumes: 0, buildCache: 0, total: 1234 },
    estimatedBytes: 1234,
    estimateExact: true,
    estimateMethod: { method: 'layer-graph', exact: true, note: 'Exact.' },
    unmatchedProtect: [],
  };
  return {
    plan,
    host: 'unix:///x.sock',
    engine: { name: 'docker', version: '20.10.24', apiVersion: '1.41', imageStore: 'classic', id: 'test' },
    nowMs: NOW,
    usageBefore: { layers: 5000, containers: 0, volumes: 0, buildCache: 0 },
    measured: ['layers'],
    timings: {},
    warnings: [],
  };
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
