// Runner-built action images (`<6 hex>:<32 hex>`): which images are of that class and how the plan
// treats them, whatever `images` says.
import { describe, expect, it } from '@jest/globals';
import { parseProtectEntry } from '../src/policy/protect';
import { isRunnerImage, planRemovals, type Policy } from '../src/policy/plan';
import type { RunFacts } from '../src/report/facts';
import { runnerImagesLine } from '../src/report/figures';
import { buildReport } from '../src/report/json-report';
import { imageRows } from '../src/report/rows';
import { renderSummary } from '../src/report/summary';
import { renderTable } from '../src/report/table';
import type { ContainerInfo, ImageInfo } from '../src/types';
import { factsOf } from './support/facts';
import { inventoryOf } from './support/inventory';
import { containerInfo, DAY_MS, hexOf, imageInfo, withLayers } from './support/objects';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const hex = (n: number) => hexOf(`runner${n}`);
const STEP = '0123456789abcdef0123456789abcdef';
const RUNNER = `d8e1f2:${STEP}`;

let seq = 0;
function image(tags: string[], ageDays: number, layers: [string, number][] = []): ImageInfo {
  seq++;
  const own: [string, number][] = layers.length > 0 ? layers : [[`own${seq}`, 1000 * seq]];
  return imageInfo({
    id: `sha256:${hex(seq)}`,
    repoTags: tags,
    createdMs: NOW - ageDays * DAY_MS,
    ...withLayers(own.map(([k, s]) => [`sha256:${k}`, s])),
  });
}

const inventory = (images: ImageInfo[], containers: ContainerInfo[] = []) => inventoryOf(images, containers);

function created(name: string, img: ImageInfo): ContainerInfo {
  return containerInfo({
    id: hex(1000 + name.length),
    names: [name],
    imageId: img.id,
    image: img.repoTags[0] ?? img.id,
    state: 'created',
    createdMs: NOW - DAY_MS,
  });
}

const policy = (p: Partial<Policy> = {}): Policy => ({
  mode: 'report',
  images: 'dangling',
  protect: [],
  keepRecent: 2,
  ...p,
});

describe('isRunnerImage', () => {
  it.each([
    [[RUNNER], true],
    [[`000000:${'f'.repeat(32)}`], true],
    [[RUNNER, `abcdef:${'0'.repeat(32)}`], true],
    // Podman lists names loaded without a registry under localhost/.
    [[`localhost/${RUNNER}`], true],
    [[], false],
    [[`d8e1f2a0:${STEP}`], false], // 8 hex digits
    [[`d8e1f:${STEP}`], false], // 5 hex digits
    [[`d8e1f2:${STEP}0`], false], // 33 hex digits
    [[`d8e1f2:${STEP.slice(1)}`], false], // 31 hex digits
    [[`d8e1f2:latest`], false], // the tag is not 32 hex digits
    [[`D8E1F2:${STEP}`], false], // upper case repository (not even a valid Docker name)
    [[`d8e1f2:${STEP.toUpperCase()}`], false], // upper case tag
    [[`g8e1f2:${STEP}`], false], // not hex
    [[`docker.io/library/d8e1f2:${STEP}`], false],
    [[`team/d8e1f2:${STEP}`], false],
    [[RUNNER, 'web/api:1'], false], // one tag of another form: someone tagged it on purpose
  ])('%j -> %s', (tags, expected) => {
    expect(isRunnerImage({ repoTags: tags })).toBe(expected);
  });
});

describe('planRemovals: runner-built action images', () => {
  const old1 = image([RUNNER], 10, [
    ['base', 5000],
    ['step1', 300],
  ]);
  const old2 = image([`d8e1f2:${'1'.repeat(32)}`], 9, [
    ['base', 5000],
    ['step2', 200],
  ]);
  const newest = image([`d8e1f2:${'2'.repeat(32)}`], 0.1);
  const used = image([`d8e1f2:${'3'.repeat(32)}`], 20);
  const guarded = image([`abcdef:${'4'.repeat(32)}`], 20);
  const lookalike8 = image([`d8e1f2a0:${STEP}`], 30);
  const lookalikeTag = image(['d8e1f2:v1'], 30);
  const lookalikeUpper = image([`d8e1f2:${STEP.toUpperCase()}`], 30);
  const mixed = image([`d8e1f2:${'5'.repeat(32)}`, 'keep/me:1'], 30);
  const baseUser = image(['app/web:1'], 1, [
    ['base', 5000],
    ['web', 50],
  ]);
  const all = [old1, old2, newest, used, guarded, lookalike8, lookalikeTag, lookalikeUpper, mixed, baseUser];
  const inv = inventory(all, [created('job-step', used)]);
  const protect = [parseProtectEntry(`abcdef:*`)];

  const decisions = (p: Partial<Policy>) =>
    Object.fromEntries(
      planRemovals(inv, policy({ protect, ...p }), NOW).images.map((d) => [
        d.image.repoTags[0],
        `${d.action}:${d.reason}${d.runnerImage ? ':runner' : ''}`,
      ]),
    );

  it.each<['none' | 'dangling' | 'unused']>([['none'], ['dangling'], ['unused']])(
    'images: %s: unused runner images are candidates, keep-recent does not apply; look-alikes follow images',
    (images) => {
      const other =
        images === 'unused' ? 'remove:remove' : images === 'none' ? 'keep:not-selected' : 'keep:tagged';
      expect(decisions({ images, keepRecent: images === 'unused' ? 0 : 2 })).toEqual({
        [old1.repoTags[0]]: 'remove:remove:runner',
        [old2.repoTags[0]]: 'remove:remove:runner',
        [newest.repoTags[0]]: 'remove:remove:runner',
        [used.repoTags[0]]: 'keep:in-use:runner',
        [guarded.repoTags[0]]: 'keep:protected:runner',
        [lookalike8.repoTags[0]]: other,
        [lookalikeTag.repoTags[0]]: other,
        [lookalikeUpper.repoTags[0]]: other,
        [mixed.repoTags[0]]: other,
        [baseUser.repoTags[0]]: other,
      });
    },
  );

  it('older-than applies to them', () => {
    const d = decisions({ olderThan: { text: '1d', durationMs: DAY_MS } });
    expect(d[newest.repoTags[0]]).toBe('keep:too-recent:runner');
    expect(d[old1.repoTags[0]]).toBe('remove:remove:runner');
  });

  it('keep-recent does not keep them; with runner-images: none it does again', () => {
    expect(decisions({ images: 'unused', keepRecent: 5 })[newest.repoTags[0]]).toBe('remove:remove:runner');
    const off = decisions({ runnerImages: 'none', images: 'unused', keepRecent: 1 });
    expect(off[newest.repoTags[0]]).toBe('keep:keep-recent');
    expect(off[old1.repoTags[0]]).toBe('remove:remove');
    expect(decisions({ runnerImages: 'none', images: 'dangling' })[old1.repoTags[0]]).toBe('keep:tagged');
  });

  it('counts them and the layer bytes they alone free', () => {
    const plan = planRemovals(inv, policy({ protect }), NOW);
    // base is shared with app/web:1, which stays: only the step layers and newest's own layer go.
    expect(plan.runnerImages).toEqual({ count: 3, bytes: 300 + 200 + newest.size });
    expect(plan.estimatedBytes).toBe(300 + 200 + newest.size);
  });

  it('is a class of its own in the summary, the table and the JSON report', () => {
    const plan = planRemovals(inv, policy({ protect }), NOW);
    const rows = imageRows(plan);
    const facts = factsOf(plan, NOW, { engine: inv.engine, usageBefore: inv.usage });
    expect(300 + 200 + newest.size).toBe(3500);
    const line = 'runner-built action images: 3, 3.50 kB';
    expect(runnerImagesLine(facts, rows)).toBe(line);
    expect(renderSummary(facts, rows)).toContain(line);
    expect(renderTable(facts, rows)).toContain(line);
    const report = buildReport(facts, rows);
    expect(report.runnerImages).toEqual({ count: 3, estimatedBytes: 300 + 200 + newest.size });
    const classes = Object.fromEntries(report.images.map((i) => [i.tags[0], i.class]));
    expect(classes[RUNNER]).toBe('runner-image');
    expect(classes[used.repoTags[0]]).toBe('runner-image');
    expect(classes[lookalike8.repoTags[0]]).toBe('image');
    expect(classes['app/web:1']).toBe('image');
  });

  it('says nothing of them when there are none', () => {
    const plan = planRemovals(inventory([baseUser]), policy(), NOW);
    const facts = { plan, measured: [], warnings: [] } as unknown as RunFacts;
    expect(runnerImagesLine(facts, imageRows(plan))).toBeUndefined();
  });
});
