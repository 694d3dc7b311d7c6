// The budget as pure code: targets, order (least recently used first), where it stops, and the usage
// history it orders by; and the state file's reading, locking and merging on a real folder.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { readState, STATE_FILE, writeState } from '../src/engine/state';
import {
  budgetMet,
  budgetMetAfter,
  layerGraph,
  orderImages,
  planWithBudget,
  type BudgetContext,
  type BudgetPolicy,
} from '../src/policy/budget';
import { planRemovals } from '../src/policy/plan';
import { budgetLines } from '../src/report/budget-lines';
import type { RunFacts } from '../src/report/facts';
import { buildReport } from '../src/report/json-report';
import { imageRows } from '../src/report/rows';
import { renderMetrics } from '../src/report/metrics';
import { renderSummary } from '../src/report/summary';
import { renderTable } from '../src/report/table';
import {
  emptyState,
  lastUsedTimes,
  MAX_DAEMONS,
  parseState,
  recordUsage,
  STATE_FORMAT,
} from '../src/policy/usage';
import type { ContainerInfo, ImageInfo, Inventory } from '../src/types';
import { factsOf } from './support/facts';
import { inventoryOf } from './support/inventory';
import { containerInfo, DAY_MS, hexOf as hex, imageInfo, withLayers } from './support/objects';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const MB = 1_000_000;

/** An image named `name`, created `ageDays` ago, with its own layer of `mb` MB on top of `base` layers. */
function image(
  name: string,
  ageDays: number,
  mb = 10,
  extra: Partial<ImageInfo> = {},
  base: [string, number][] = [],
): ImageInfo {
  const layers: [string, number][] = [...base, [`own-${name}`, mb * MB]];
  return imageInfo({
    id: `sha256:${hex(name)}`,
    repoTags: name.startsWith('<') ? [] : [`repo/${name}:1`],
    createdMs: NOW - ageDays * DAY_MS,
    ...withLayers(layers.map(([k, s]) => [`sha256:${hex(k)}`, s])),
    ...extra,
  });
}

function container(
  name: string,
  img: ImageInfo,
  state: string,
  extra: Partial<ContainerInfo> = {},
): ContainerInfo {
  return containerInfo({
    id: hex(`c-${name}`),
    names: [name],
    imageId: img.id,
    image: img.repoTags[0] ?? img.id,
    state,
    createdMs: NOW - 30 * DAY_MS,
    ...extra,
  });
}

const inventory = (images: ImageInfo[], containers: ContainerInfo[] = [], extra: Partial<Inventory> = {}) =>
  inventoryOf(images, containers, { takenAt: NOW, ...extra });

const policy = (p: Partial<BudgetPolicy> = {}): BudgetPolicy => ({
  mode: 'report',
  images: 'unused',
  protect: [],
  keepRecent: 0,
  ...p,
});

const disk = (freeMb: number, totalMb = 1000, freeInodes = 1e6) => ({
  freeBytes: freeMb * MB,
  totalBytes: totalMb * MB,
  freeInodes,
  totalInodes: 2e6,
});

const ctx = (c: Partial<BudgetContext> = {}): BudgetContext => ({ lastUsed: new Map(), ...c });
const bytes = (amount: number) => ({ text: String(amount), amount });

describe('orderImages: dangling first, then tagged, each least recently used first', () => {
  const old = image('old', 30);
  const young = image('young', 1);
  const dangling = image('<d>', 2);
  const usedLately = image('used', 40);
  const decide = (images: ImageInfo[]) =>
    images.map((i) => ({ image: i, action: 'remove' as const, reason: 'remove' as const, detail: '' }));

  it('puts dangling images before tagged ones and orders each by last use, then creation', () => {
    const lastUsed = new Map([[usedLately.id, NOW - DAY_MS]]);
    const order = orderImages(decide([young, usedLately, old, dangling]), lastUsed).map((d) => d.image);
    expect(order).toEqual([dangling, old, young, usedLately]);
  });

  it('breaks ties on last use by creation time, oldest first, then by ID', () => {
    const lastUsed = new Map([
      [old.id, NOW - DAY_MS],
      [young.id, NOW - DAY_MS],
    ]);
    expect(orderImages(decide([young, old]), lastUsed).map((d) => d.image)).toEqual([old, young]);
    const twin = image('twin', 30);
    const ids = orderImages(decide([twin, old]), new Map()).map((d) => d.image.id);
    expect(ids).toEqual([old.id, twin.id].sort());
  });
});

describe('orderImages: parents after their children', () => {
  it('holds an image back until every candidate built on it has gone', () => {
    const parent = image('parent', 90);
    const child = image('child', 10, 1, { parentId: parent.id });
    const grandchild = image('grandchild', 5, 1, { parentId: child.id });
    const other = image('other', 50);
    const decide = (images: ImageInfo[]) =>
      images.map((i) => ({ image: i, action: 'remove' as const, reason: 'remove' as const, detail: '' }));
    const order = orderImages(decide([grandchild, other, parent, child]), new Map()).map((d) => d.image);
    expect(order).toEqual([other, grandchild, child, parent]);
  });
});

describe('lastUsedTimes: the latest of history, containers and LastTagTime', () => {
  const a = image('a', 100, 1, { lastTagMs: NOW - 50 * DAY_MS });
  const b = image('b', 100);
  const c = image('c', 100);

  it('takes the latest signal, and now for an image with a running container', () => {
    const history = {
      updatedMs: NOW,
      images: { [a.id]: { firstSeenMs: NOW - 90 * DAY_MS, lastUsedMs: NOW - 60 * DAY_MS } },
    };
    const containers = [
      container('done', b, 'exited', { startedMs: NOW - 20 * DAY_MS, finishedMs: NOW - 19 * DAY_MS }),
      container('live', c, 'running'),
    ];
    const times = lastUsedTimes([a, b, c], containers, history, NOW);
    expect(times.get(a.id)).toBe(NOW - 50 * DAY_MS); // LastTagTime is later than the recorded use
    expect(times.get(b.id)).toBe(NOW - 19 * DAY_MS);
    expect(times.get(c.id)).toBe(NOW);
  });

  it('counts a time in the future (a hand-edited file, a clock jump) as now, and unknown as never', () => {
    const history = {
      updatedMs: NOW,
      images: { [a.id]: { firstSeenMs: 0, lastUsedMs: NOW + 400 * DAY_MS } },
    };
    const times = lastUsedTimes([image('a', 100), b], [], history, NOW);
    expect(times.get(a.id)).toBe(NOW);
    expect(times.get(b.id)).toBe(0);
  });
});

describe('layerGraph: the marginal bytes of each removal, in order', () => {
  it('frees a shared layer only with the last image that has it', () => {
    const base: [string, number][] = [['shared', 50 * MB]];
    const x = image('x', 10, 5, {}, base);
    const y = image('y', 10, 7, {}, base);
    const z = image('z', 10, 3);
    const graph = layerGraph([x, y, z]);
    expect(graph.remove(x.id)).toBe(5 * MB);
    expect(graph.remove(y.id)).toBe(57 * MB);
    expect(graph.remove(z.id)).toBe(3 * MB);
    expect(graph.remove(z.id)).toBe(0);
  });

  it('removes an untagged parent of the cascade with its last child', () => {
    const parent = image('<parent>', 10, 40);
    const child = image('child', 5, 2, { parentId: parent.id }, [[`own-<parent>`, 40 * MB]]);
    const graph = layerGraph([parent, child], new Set([parent.id]));
    expect(graph.remove(child.id)).toBe(42 * MB);
  });
});

describe('planWithBudget: candidates in budget order until every budget is met', () => {
  const imgs = [image('a', 50), image('b', 40), image('c', 30), image('d', 20), image('<dangling>', 10)];
  const inv = inventory(imgs);

  it('is planRemovals without a budget', () => {
    expect(planWithBudget(inv, policy(), NOW, ctx({ disk: disk(100) }))).toEqual(
      planRemovals(inv, policy(), NOW),
    );
  });

  it('stops at the first removal that meets free-space, keeping the rest as budget-met', () => {
    const plan = planWithBudget(inv, policy({ freeSpace: bytes(125 * MB) }), NOW, ctx({ disk: disk(100) }));
    const b = plan.budget!;
    expect(b.needBytes).toBe(25 * MB);
    expect(b.steps.map((s) => s.id)).toEqual([imgs[4].id, imgs[0].id, imgs[1].id]);
    expect(b.steps.map((s) => s.runningTotal)).toEqual([10 * MB, 20 * MB, 30 * MB]);
    expect(b.steps.map((s) => s.met)).toEqual([false, false, true]);
    expect(b.metAfter).toBe(3);
    expect(b.notNeeded).toBe(2);
    const reasons = Object.fromEntries(plan.images.map((d) => [d.image.repoTags[0] ?? 'dangling', d.reason]));
    expect(reasons).toEqual({
      dangling: 'remove',
      'repo/a:1': 'remove',
      'repo/b:1': 'remove',
      'repo/c:1': 'budget-met',
      'repo/d:1': 'budget-met',
    });
    // The plan's own estimate is the running total: report and prune agree on it.
    expect(plan.estimate.images).toBe(30 * MB);
  });

  it('takes a percentage of the filesystem', () => {
    const plan = planWithBudget(
      inv,
      policy({ freeSpace: { text: '12%', percent: 12 } }),
      NOW,
      ctx({ disk: disk(100) }),
    );
    expect(plan.budget!.targets.freeSpace?.bytes).toBe(120 * MB);
    expect(plan.budget!.steps).toHaveLength(2);
  });

  it('removes nothing, not even networks or volumes, when every budget is met already', () => {
    const withNet = inventory(imgs, [], {
      networks: [{ id: 'n1', name: 'idle', driver: 'bridge', scope: 'local', labels: {}, createdMs: 0 }],
    });
    const plan = planWithBudget(
      withNet,
      policy({ freeSpace: bytes(50 * MB), networks: 'unused' }),
      NOW,
      ctx({ disk: disk(100) }),
    );
    expect(plan.budget!.metAtStart).toBe(true);
    expect(plan.budget!.metAfter).toBe(0);
    expect(plan.images.every((d) => d.action === 'keep')).toBe(true);
    expect(plan.objects.map((o) => `${o.action}:${o.reason}`)).toEqual(['keep:budget-met']);
    expect(plan.estimate.total).toBe(0);
  });

  it('says by how much an unreachable budget falls short and what holds the space', () => {
    const used = image('used', 60, 200);
    const shielded = image('shielded', 60, 90, { labels: { keep: '1' } });
    const full = inventory([...imgs, used, shielded], [container('svc', used, 'running')]);
    const plan = planWithBudget(
      full,
      policy({ freeSpace: bytes(400 * MB), protect: [{ kind: 'label', entry: 'label=keep', key: 'keep' }] }),
      NOW,
      ctx({ disk: disk(100) }),
    );
    const b = plan.budget!;
    expect(b.steps).toHaveLength(5);
    expect(b.shortfallBytes).toBe(250 * MB);
    expect(b.metAfter).toBeUndefined();
    expect(b.holding.map((h) => [h.name, h.bytes, h.reason.split(':')[0]])).toEqual([
      ['repo/used:1', 200 * MB, 'in-use'],
      ['repo/shielded:1', 90 * MB, 'protected'],
    ]);
  });

  it('counts each held byte once: images their unique bytes, the layers kept images share apart', () => {
    const base: [string, number][] = [['base', 100 * MB]];
    const used = image('used', 60, 20, {}, base);
    const other = image('other', 60, 30, { labels: { keep: '1' } }, base);
    const full = inventory([used, other], [container('svc', used, 'running')]);
    const plan = planWithBudget(
      full,
      policy({ freeSpace: bytes(400 * MB), protect: [{ kind: 'label', entry: 'label=keep', key: 'keep' }] }),
      NOW,
      ctx({ disk: disk(100) }),
    );
    const held = plan.budget!.holding;
    expect(held.map((h) => [h.name, h.bytes])).toEqual([
      ['layers kept images share', 100 * MB],
      ['repo/other:1', 30 * MB],
      ['repo/used:1', 20 * MB],
    ]);
    // Together: every byte of the kept images, once (their whole sizes would add to 250 MB).
    expect(held.reduce((n, h) => n + h.bytes, 0)).toBe(150 * MB);
  });

  it('meets max-usage from the daemon usage alone, with no filesystem visible', () => {
    const plan = planWithBudget(inv, policy({ maxUsage: 35 * MB }), NOW, ctx());
    expect(plan.budget!.needBytes).toBe(15 * MB);
    expect(plan.budget!.steps).toHaveLength(2);
  });

  it('removes nothing for a disk budget it cannot measure (a remote daemon), and says so', () => {
    const plan = planWithBudget(inv, policy({ freeSpace: bytes(500 * MB) }), NOW, ctx());
    expect(plan.budget!.steps).toEqual([]);
    expect(plan.images.every((d) => d.action === 'keep')).toBe(true);
    expect(plan.budget!.unmeasurable[0]).toMatch(/^free-space: .* cannot be measured .* use max-usage/);
  });

  it('takes stopped containers first, oldest finished first, then images', () => {
    const base = image('base', 90, 1);
    const cs = [
      container('late', base, 'exited', { finishedMs: NOW - DAY_MS, sizeRw: 4 * MB }),
      container('early', base, 'exited', { finishedMs: NOW - 9 * DAY_MS, sizeRw: 4 * MB }),
    ];
    const plan = planWithBudget(
      inventory([...imgs, base], cs),
      policy({ containers: 'stopped', freeSpace: bytes(106 * MB) }),
      NOW,
      ctx({ disk: disk(100) }),
    );
    expect(plan.budget!.steps.map((s) => s.name)).toEqual(['early', 'late']);
    expect(plan.objects.map((o) => `${o.name}:${o.action}`)).toEqual(['late:remove', 'early:remove']);
    // Both containers go, so base becomes a candidate; the budget does not need it.
    expect(plan.images.find((d) => d.image.id === base.id)?.reason).toBe('budget-met');
  });

  it('keeps the image of a container the budget keeps', () => {
    const base = image('base', 90, 1);
    const cs = [
      container('one', base, 'exited', { finishedMs: NOW - 9 * DAY_MS, sizeRw: 4 * MB }),
      container('two', base, 'exited', { finishedMs: NOW - DAY_MS, sizeRw: 4 * MB }),
    ];
    const plan = planWithBudget(
      inventory([base], cs),
      policy({ containers: 'stopped', freeSpace: bytes(103 * MB) }),
      NOW,
      ctx({ disk: disk(100) }),
    );
    expect(plan.objects.map((o) => `${o.name}:${o.reason}`)).toEqual(['one:remove', 'two:budget-met']);
    expect(plan.images[0].reason).toBe('in-use');
  });

  it('sizes the build cache prune to what the budget still needs (keep-storage)', () => {
    const records = [10, 20, 30].map((mb, i) => ({
      id: `r${i}`,
      size: mb * MB,
      inUse: false,
      shared: false,
      lastUsedMs: NOW - (10 - i) * DAY_MS,
    }));
    const withCache = inventory(imgs, [], { buildCache: records });
    const plan = planWithBudget(
      withCache,
      policy({ buildCache: 'unused', freeSpace: bytes(125 * MB) }),
      NOW,
      ctx({ disk: disk(100) }),
    );
    // The two least recently used records (30 MB) cover the 25 MB: no image is needed.
    expect(plan.budget!.steps.map((s) => [s.kind, s.bytes])).toEqual([['build-cache', 30 * MB]]);
    expect(plan.buildCache).toMatchObject({ keepStorage: 30 * MB, estimatedBytes: 30 * MB, candidates: 2 });
    expect(plan.images.every((d) => d.reason === 'budget-met')).toBe(true);
  });

  it('lists every candidate for an inode budget (measured during the prune) and stops at stepsDone', () => {
    const p = policy({ freeInodes: { text: '5000', amount: 5000 } });
    const plan = planWithBudget(inv, p, NOW, ctx({ disk: disk(100, 1000, 1000) }));
    expect(plan.budget!.needInodes).toBe(4000);
    expect(plan.budget!.steps).toHaveLength(5);
    expect(plan.budget!.metAfter).toBeUndefined();
    const done = planWithBudget(inv, p, NOW, ctx({ disk: disk(100, 1000, 1000), stepsDone: 2 }));
    expect(done.budget!.steps).toHaveLength(2);
    expect(done.images.filter((d) => d.action === 'remove')).toHaveLength(2);
  });

  it('orders by recorded use: an image used lately goes last', () => {
    const lastUsed = new Map([[imgs[0].id, NOW - DAY_MS]]);
    const plan = planWithBudget(
      inv,
      policy({ freeSpace: bytes(200 * MB) }),
      NOW,
      ctx({ disk: disk(100), lastUsed }),
    );
    expect(plan.budget!.steps.at(-1)!.id).toBe(imgs[0].id);
  });
});

describe('watermarks: removal starts at a line and stops at its target', () => {
  const imgs = [image('a', 50), image('b', 40), image('c', 30), image('d', 20), image('<dangling>', 10)];
  const inv = inventory(imgs);
  const watermark = { freeSpace: bytes(105 * MB), freeSpaceTarget: bytes(135 * MB) };

  it('removes nothing while the start line is met, however far the target is', () => {
    const plan = planWithBudget(inv, policy(watermark), NOW, ctx({ disk: disk(110) }));
    const b = plan.budget!;
    expect(b.metAtStart).toBe(true);
    expect(b.triggeredBy).toEqual([]);
    expect(b.needBytes).toBe(0);
    expect(b.steps).toEqual([]);
    expect(plan.images.every((d) => d.action === 'keep')).toBe(true);
    expect(budgetLines(b)).toContain('every budget line is met already: nothing is removed');
    // After a run that removed nothing, the start line is what must still hold.
    expect(budgetMetAfter(b, { freeBytes: 110 * MB, usage: 0 })).toBe(true);
    expect(budgetMetAfter(b, { freeBytes: 100 * MB, usage: 0 })).toBe(false);
  });

  it('once the line is crossed, removes until the target, not just back over the line', () => {
    const plan = planWithBudget(inv, policy(watermark), NOW, ctx({ disk: disk(100) }));
    const b = plan.budget!;
    expect(b.triggeredBy).toEqual(['free-space']);
    expect(b.starts.freeSpace?.bytes).toBe(105 * MB);
    expect(b.targets.freeSpace?.bytes).toBe(135 * MB);
    expect(b.needBytes).toBe(35 * MB);
    expect(b.steps).toHaveLength(4);
    expect(b.metAfter).toBe(4);
    // Without the target the same disk stops after one removal.
    const plain = planWithBudget(inv, policy({ freeSpace: bytes(105 * MB) }), NOW, ctx({ disk: disk(100) }));
    expect(plain.budget!.steps).toHaveLength(1);
    expect(budgetMet(b, 10 * MB)).toBe(false);
    expect(budgetMet(b, 40 * MB)).toBe(true);
    expect(budgetMetAfter(b, { freeBytes: 120 * MB, usage: 0 })).toBe(false);
    expect(budgetLines(b).slice(0, 2)).toEqual([
      'free space ≥ 135.0 MB (135000000, removal starts below 105.0 MB (105000000)): 100.0 MB free before',
      'crossed: free-space; removing until every target is met',
    ]);
  });

  it('one crossed line sends every budget to its target', () => {
    const plan = planWithBudget(
      inv,
      policy({ ...watermark, maxUsage: 30 * MB, maxUsageTarget: 15 * MB }),
      NOW,
      ctx({ disk: disk(110) }),
    );
    const b = plan.budget!;
    // free-space is met (110 ≥ 105); max-usage is crossed (50 MB used > 30 MB): both go to their targets.
    expect(b.triggeredBy).toEqual(['max-usage']);
    expect(b.needBytes).toBe(Math.max(135 - 110, 50 - 15) * MB);
    expect(b.targets.maxUsage?.bytes).toBe(15 * MB);
  });

  it('stops at the stricter of a start line and a target given in other units', () => {
    const plan = planWithBudget(
      inv,
      policy({ freeSpace: bytes(120 * MB), freeSpaceTarget: { text: '5%', percent: 5 } }),
      NOW,
      ctx({ disk: disk(100) }),
    );
    expect(plan.budget!.targets.freeSpace?.bytes).toBe(120 * MB);
  });
});

describe('budgetMet: by the estimate or by measuring', () => {
  const plan = planWithBudget(
    inventory([image('a', 9), image('b', 8)]),
    policy({ freeSpace: bytes(115 * MB), freeInodes: { text: '10', amount: 10 } }),
    NOW,
    ctx({ disk: disk(100, 1000, 5) }),
  );
  it('needs the bytes (estimated or measured) and the inodes (measured)', () => {
    const b = plan.budget!;
    expect(budgetMet(b, 20 * MB, { freeInodes: 9 })).toBe(false);
    expect(budgetMet(b, 20 * MB, { freeInodes: 10 })).toBe(true);
    expect(budgetMet(b, 10 * MB, { freeInodes: 10 })).toBe(false);
    expect(budgetMet(b, 10 * MB, { freeInodes: 10, freeBytes: 115 * MB })).toBe(true);
  });
});

describe('usage history (pure)', () => {
  it('records images in use now and when each was first seen, dropping images gone', () => {
    const one = recordUsage(emptyState(), { daemonId: 'd1', images: ['x', 'y'], inUse: ['x'], nowMs: 1000 });
    expect(one.daemons.d1.images).toEqual({
      x: { firstSeenMs: 1000, lastUsedMs: 1000 },
      y: { firstSeenMs: 1000 },
    });
    const two = recordUsage(one, { daemonId: 'd1', images: ['y', 'z'], inUse: ['z'], nowMs: 2000 });
    expect(two.daemons.d1.images).toEqual({
      y: { firstSeenMs: 1000 },
      z: { firstSeenMs: 2000, lastUsedMs: 2000 },
    });
    // Another daemon's history is its own.
    const other = recordUsage(two, { daemonId: 'd2', images: ['y'], inUse: ['y'], nowMs: 3000 });
    expect(other.daemons.d1).toEqual(two.daemons.d1);
    expect(other.daemons.d2.images.y).toEqual({ firstSeenMs: 3000, lastUsedMs: 3000 });
  });

  it(`keeps the ${MAX_DAEMONS} most recently seen daemons`, () => {
    let state = emptyState();
    for (let i = 0; i < MAX_DAEMONS + 5; i++) {
      state = recordUsage(state, { daemonId: `d${i}`, images: [], inUse: [], nowMs: i });
    }
    expect(Object.keys(state.daemons)).toHaveLength(MAX_DAEMONS);
    expect(state.daemons.d0).toBeUndefined();
    expect(state.daemons[`d${MAX_DAEMONS + 4}`]).toBeDefined();
  });

  it.each([
    ['{not json', 'corrupt'],
    ['{"format":"safe-docker-prune/usage","version":1}', 'corrupt'],
    ['{"some":"other tool"}', 'foreign'],
    ['[]', 'foreign'],
    ['{"format":"safe-docker-prune/usage","version":2,"daemons":{}}', 'foreign'],
  ])('reads %j as %s, with no history', (text, problem) => {
    const parsed = parseState(text);
    expect(parsed.problem).toBe(problem);
    expect(parsed.state).toEqual(emptyState());
  });

  it('drops entries whose times are not numbers', () => {
    const text = JSON.stringify({
      format: STATE_FORMAT,
      version: 1,
      daemons: {
        d: { updatedMs: 5, images: { a: { firstSeenMs: 'soon' }, b: { firstSeenMs: 1, lastUsedMs: 'x' } } },
      },
    });
    expect(parseState(text).state.daemons.d.images).toEqual({ b: { firstSeenMs: 1 } });
  });
});

describe('the state file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sdp-state-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is missing at first (a warning), then written and read back', async () => {
    expect((await readState(dir)).warning).toMatch(/no usage history .* yet/);
    expect(await writeState(dir, { daemonId: 'd', images: ['a'], inUse: ['a'], nowMs: 7 })).toBeUndefined();
    const read = await readState(dir);
    expect(read.warning).toBeUndefined();
    expect(read.state.daemons.d.images.a).toEqual({ firstSeenMs: 7, lastUsedMs: 7 });
  });

  it('lands every one of many runs writing at once (lock, merge on write, rename)', async () => {
    const writers = Array.from({ length: 25 }, (_, i) =>
      writeState(dir, { daemonId: `d${i}`, images: [`img${i}`], inUse: [], nowMs: 1000 + i }),
    );
    expect(await Promise.all(writers)).toEqual(Array(25).fill(undefined));
    const state = (await readState(dir)).state;
    expect(Object.keys(state.daemons).sort()).toEqual(Array.from({ length: 25 }, (_, i) => `d${i}`).sort());
  });

  it('takes over a stale lock left by a run that died', async () => {
    const lock = join(dir, `${STATE_FILE}.lock`);
    writeFileSync(lock, '999999999 deadbeef\n');
    const old = (Date.now() - 60_000) / 1000;
    utimesSync(lock, old, old);
    expect(await writeState(dir, { daemonId: 'd', images: [], inUse: [], nowMs: 1 })).toBeUndefined();
  });

  it('never overwrites a file that is not ours, and replaces a corrupt one', async () => {
    const file = join(dir, STATE_FILE);
    writeFileSync(file, '{"mine":"not yours"}');
    expect((await readState(dir)).warning).toMatch(/is not ours .* left as it is/);
    expect(await writeState(dir, { daemonId: 'd', images: [], inUse: [], nowMs: 1 })).toMatch(
      /not a usage history/,
    );
    expect(readFileSync(file, 'utf8')).toBe('{"mine":"not yours"}');
    writeFileSync(file, '{"format":"safe-docker-prune/usage","vers');
    expect((await readState(dir)).warning).toMatch(/is corrupt .* will be replaced/);
    expect(await writeState(dir, { daemonId: 'd', images: ['a'], inUse: [], nowMs: 1 })).toBeUndefined();
    expect((await readState(dir)).warning).toBeUndefined();
  });
});

describe('the budget in the summary, the table and the JSON report', () => {
  const imgs = [image('a', 50), image('b', 40), image('c', 30)];
  const inv = inventory(imgs);
  const facts = (plan: ReturnType<typeof planWithBudget>): RunFacts =>
    factsOf(plan, NOW, { engine: inv.engine, usageBefore: inv.usage });

  it('shows each target against the state before and after, and where the budget is met, in order', () => {
    const plan = planWithBudget(
      inv,
      policy({ mode: 'prune', freeSpace: bytes(115 * MB), freeInodes: { text: '1%', percent: 1 } }),
      NOW,
      ctx({ disk: disk(100, 1000, 500_000) }),
    );
    plan.budget!.after = { freeBytes: 121 * MB, freeInodes: 500_100, usage: 10 * MB };
    plan.budget!.metAfterPrune = true;
    expect(budgetLines(plan.budget!)).toEqual([
      'free space ≥ 115.0 MB (115000000): 100.0 MB free before, 121.0 MB after',
      'free inodes ≥ 20000 (1%): 500000 free before, 500100 after',
      'crossed: free-space; removing until every target is met',
      'to free: 15.0 MB',
      'met after removal 2 of 2 (running total 20.0 MB); 1 more candidate(s) kept: budget met',
      'after the prune: every budget is met',
    ]);
    const f = facts(plan);
    const rows = imageRows(plan);
    const summary = renderSummary(f, rows);
    expect(summary).toContain('### Budget');
    expect(summary).toContain('<td>2</td><td>image</td><td><code>repo/b:1</code></td>');
    expect(summary).toContain('<td>20.0 MB</td><td><b>budget met</b></td>');
    const table = renderTable(f, rows);
    expect(table).toContain('Removed in budget order (2)');
    expect(table).toMatch(/2 {2}image {2}repo\/b:1 +never +10\.0 MB +20\.0 MB +budget met/);
    const report = buildReport(f, rows);
    expect(report.budget).toMatchObject({ needBytes: 15 * MB, metAfter: 2, metAfterPrune: true });
    expect(report.images.map((i) => i.reason)).toEqual(['remove', 'remove', 'budget-met']);
  });
});

describe('the budget in the metrics file', () => {
  const pass = {
    daemon: 'unix:///d.sock',
    mode: 'prune',
    ok: true,
    endedMs: 0,
    durationMs: 1,
    removed: { images: 0, containers: 0, networks: 0, volumes: 0 },
    keptImages: 0,
    estimatedBytes: 0,
    estimatedBytesLow: 0,
    estimatedBytesHigh: 0,
    reclaimedBytes: 0,
  };
  it('has whether it is met and what it lacks, only with a budget', () => {
    const text = renderMetrics({ ...pass, budgetMet: false, budgetShortfallBytes: 1234 });
    expect(text).toContain('safe_docker_prune_budget_met{daemon="unix:///d.sock"} 0');
    expect(text).toContain('safe_docker_prune_budget_shortfall_bytes{daemon="unix:///d.sock"} 1234');
    expect(renderMetrics(pass)).not.toContain('budget');
  });
});
