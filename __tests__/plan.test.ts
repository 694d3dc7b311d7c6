import { describe, expect, it } from '@jest/globals';
import { deletionGroups } from '../src/engine/apply';
import { bytesFreed, EMPTY_LAYER, layerSizesFromHistory, planLayerSizing } from '../src/policy/estimate';
import { parseProtectEntry } from '../src/policy/protect';
import { planRemovals, type Policy } from '../src/policy/plan';
import type { ContainerInfo, ImageInfo, Inventory, NetworkInfo, VolumeInfo } from '../src/types';
import { inventoryOf } from './support/inventory';
import { containerInfo, DAY_MS, hexOf as hex, imageInfo, withLayers } from './support/objects';

const NOW = Date.parse('2026-06-01T00:00:00Z');

let seq = 0;
/** An image created `ageDays` before NOW, with layers named by key and each sized as given. */
function image(
  tags: string[],
  ageDays: number,
  layers: [string, number][] = [],
  extra: Partial<ImageInfo> = {},
): ImageInfo {
  seq++;
  const own: [string, number][] = layers.length > 0 ? layers : [[`own${seq}`, 1000]];
  return imageInfo({
    id: `sha256:${hex(seq)}`,
    repoTags: tags,
    createdMs: NOW - ageDays * DAY_MS,
    ...withLayers(own.map(([k, s]) => [`sha256:${k}`, s])),
    ...extra,
  });
}

function container(
  name: string,
  img: ImageInfo,
  state = 'running',
  extra: Partial<ContainerInfo> = {},
): ContainerInfo {
  return containerInfo({
    id: hex(name.length * 7919 + name.charCodeAt(0)),
    names: [name],
    imageId: img.id,
    image: img.repoTags[0] ?? img.id,
    state,
    createdMs: NOW - 10 * DAY_MS,
    ...extra,
  });
}

/** The plan's tests read no usage: it is zero here, where inventoryOf sums the images. */
const inventory = (images: ImageInfo[], containers: ContainerInfo[] = [], extra: Partial<Inventory> = {}) =>
  inventoryOf(images, containers, {
    usage: { layers: 0, containers: 0, volumes: 0, buildCache: 0 },
    takenAt: NOW,
    ...extra,
  });

const policy = (p: Partial<Policy> = {}): Policy => ({
  mode: 'report',
  images: 'unused',
  protect: [],
  keepRecent: 0,
  ...p,
});

const decisionsOf = (inv: Inventory, p: Partial<Policy>) =>
  Object.fromEntries(
    planRemovals(inv, policy(p), NOW).images.map((d) => [
      d.image.repoTags[0] ?? d.image.id,
      `${d.action}:${d.reason}`,
    ]),
  );

describe('planRemovals: one decision and reason per image', () => {
  const app1 = image(['web/api:v1'], 30);
  const app10 = image(['web/api:v10'], 20);
  const app11 = image(['web/api:v11'], 10);
  const pg = image(['postgres:16'], 40, [], { labels: { keep: 'yes' } });
  const pgAlpine = image(['postgres:16-alpine'], 40);
  const dangling = image([], 50);
  const created = image(['tools/lint:1'], 60);
  const exited = image(['tools/fmt:1'], 60);
  const fresh = image(['web/ui:1'], 0.5);
  const all = [app1, app10, app11, pg, pgAlpine, dangling, created, exited, fresh];
  const inv = inventory(all, [
    container('lint', created, 'created'),
    container('fmt', exited, 'exited'),
    container('api', app11),
  ]);

  const cases: [string, Partial<Policy>, Record<string, string>][] = [
    [
      'unused: everything no container refers to',
      {},
      {
        'web/api:v1': 'remove:remove',
        'web/api:v10': 'remove:remove',
        'web/api:v11': 'keep:in-use',
        'postgres:16': 'remove:remove',
        'postgres:16-alpine': 'remove:remove',
        [dangling.id]: 'remove:remove',
        'tools/lint:1': 'keep:in-use',
        'tools/fmt:1': 'keep:in-use',
        'web/ui:1': 'remove:remove',
      },
    ],
    [
      'dangling: tagged images are kept',
      { images: 'dangling' },
      { 'web/api:v1': 'keep:tagged', [dangling.id]: 'remove:remove', 'web/api:v11': 'keep:in-use' },
    ],
    [
      'none: nothing is a candidate',
      { images: 'none' },
      { [dangling.id]: 'keep:not-selected', 'web/api:v1': 'keep:not-selected' },
    ],
    [
      'a reference is matched whole, never as a substring',
      { protect: [parseProtectEntry('web/api:v1'), parseProtectEntry('postgres:16')] },
      {
        'web/api:v1': 'keep:protected',
        'web/api:v10': 'remove:remove',
        'postgres:16': 'keep:protected',
        'postgres:16-alpine': 'remove:remove',
      },
    ],
    [
      'a name without a tag protects every tag; Docker Hub names are normalised',
      { protect: [parseProtectEntry('docker.io/library/postgres')] },
      {
        'postgres:16': 'keep:protected',
        'postgres:16-alpine': 'keep:protected',
        'web/api:v1': 'remove:remove',
      },
    ],
    [
      'wildcards in the tag',
      { protect: [parseProtectEntry('web/api:v1*')] },
      { 'web/api:v1': 'keep:protected', 'web/api:v10': 'keep:protected', 'web/ui:1': 'remove:remove' },
    ],
    [
      'by label and by ID prefix',
      {
        protect: [
          parseProtectEntry('label=keep=yes'),
          parseProtectEntry(`sha256:${dangling.id.slice(7, 19)}`),
        ],
      },
      {
        'postgres:16': 'keep:protected',
        [dangling.id]: 'keep:protected',
        'postgres:16-alpine': 'remove:remove',
      },
    ],
    [
      'keep-recent keeps the newest per repository, in use or not',
      { keepRecent: 2 },
      {
        'web/api:v11': 'keep:in-use',
        'web/api:v10': 'keep:keep-recent',
        'web/api:v1': 'remove:remove',
        'postgres:16': 'keep:keep-recent',
        'postgres:16-alpine': 'keep:keep-recent',
        [dangling.id]: 'remove:remove',
      },
    ],
    [
      'older-than as a duration: newer images are too recent',
      { olderThan: { text: '15d', durationMs: 15 * DAY_MS } },
      { 'web/api:v1': 'remove:remove', 'web/api:v10': 'remove:remove', 'web/ui:1': 'keep:too-recent' },
    ],
    [
      'older-than as a timestamp',
      { olderThan: { text: '2026-05-05', atMs: Date.parse('2026-05-05') } },
      { 'web/api:v1': 'remove:remove', 'web/api:v10': 'keep:too-recent' },
    ],
    [
      'in use beats protection, protection beats keep-recent',
      { keepRecent: 1, protect: [parseProtectEntry('web/**')] },
      { 'web/api:v11': 'keep:in-use', 'web/api:v1': 'keep:protected', 'web/ui:1': 'keep:protected' },
    ],
  ];

  it.each(cases)('%s', (_name, p, expected) => {
    const got = decisionsOf(inv, p);
    for (const [key, value] of Object.entries(expected)) expect([key, got[key]]).toEqual([key, value]);
  });

  it('reports protect entries that match nothing', () => {
    const plan = planRemovals(
      inv,
      policy({ protect: [parseProtectEntry('nothing/here'), parseProtectEntry('postgres')] }),
      NOW,
    );
    expect(plan.unmatchedProtect).toEqual(['nothing/here']);
  });

  it('names the containers that use an image', () => {
    const plan = planRemovals(inv, policy(), NOW);
    expect(plan.images.find((d) => d.image === created)?.detail).toContain('lint');
  });

  it('an age exactly at the cutoff is a candidate (Docker skips only images created after it)', () => {
    const at = image(['edge:1'], 0);
    const plan = planRemovals(inventory([at]), policy({ olderThan: { text: 'x', atMs: at.createdMs } }), NOW);
    expect(plan.images[0].action).toBe('remove');
  });
});

describe('keep-recent-by: used keeps what was deployed, however many builds came after it', () => {
  // Deployed: v1 (a container used it 3 days ago, now gone) and v2 (used 5 days ago); v3 and v4 are
  // newer builds that never ran. tools/ci never ran at all.
  const v1 = image(['shop/web:v1'], 30);
  const v2 = image(['shop/web:v2'], 20);
  const v3 = image(['shop/web:v3'], 10);
  const v4 = image(['shop/web:v4'], 5);
  const ci1 = image(['tools/ci:1'], 9);
  const ci2 = image(['tools/ci:2'], 8);
  const inv = inventory([v1, v2, v3, v4, ci1, ci2]);
  const lastUse = new Map([
    [v1.id, NOW - 3 * DAY_MS],
    [v2.id, NOW - 5 * DAY_MS],
  ]);

  it('ranks by last use by a container; never used ones after, newest first', () => {
    expect(decisionsOf(inv, { keepRecent: 1, keepRecentBy: 'used', lastUse })).toEqual({
      'shop/web:v1': 'keep:keep-recent',
      'shop/web:v2': 'remove:remove',
      'shop/web:v3': 'remove:remove',
      'shop/web:v4': 'remove:remove',
      'tools/ci:1': 'remove:remove',
      'tools/ci:2': 'keep:keep-recent',
    });
    expect(decisionsOf(inv, { keepRecent: 3, keepRecentBy: 'used', lastUse })).toMatchObject({
      'shop/web:v1': 'keep:keep-recent',
      'shop/web:v2': 'keep:keep-recent',
      'shop/web:v3': 'remove:remove',
      'shop/web:v4': 'keep:keep-recent',
    });
    const plan = planRemovals(inv, policy({ keepRecent: 1, keepRecentBy: 'used', lastUse }), NOW);
    expect(plan.images.find((d) => d.image === v1)?.detail).toBe(
      '#1 most recently used of shop/web (keep-recent 1, by last use by a container, then creation)',
    );
    expect(plan.images.find((d) => d.image === ci2)?.detail).toBe(
      '#1 newest of tools/ci (keep-recent 1, by last use by a container, then creation)',
    );
  });

  it('created (the default) keeps the newest builds, and the deployed image goes', () => {
    for (const p of [{ keepRecentBy: 'created' as const, lastUse }, {}]) {
      expect(decisionsOf(inv, { keepRecent: 1, ...p })).toMatchObject({
        'shop/web:v1': 'remove:remove',
        'shop/web:v4': 'keep:keep-recent',
      });
    }
  });
});

describe('legacy-builder parents', () => {
  // base:1 <- p1 (untagged) <- p2 (untagged) <- app:1 ; p1 <- q (untagged) <- app:2 (in use)
  const base = image(['base:1'], 10, [['b', 100]]);
  const p1 = image(
    [],
    10,
    [
      ['b', 100],
      ['l1', 10],
    ],
    { parentId: base.id },
  );
  const p2 = image(
    [],
    10,
    [
      ['b', 100],
      ['l1', 10],
      ['l2', 20],
    ],
    { parentId: p1.id },
  );
  const app1 = image(
    ['app:1'],
    10,
    [
      ['b', 100],
      ['l1', 10],
      ['l2', 20],
      ['l3', 30],
    ],
    { parentId: p2.id },
  );
  const q = image(
    [],
    10,
    [
      ['b', 100],
      ['l1', 10],
      ['m', 40],
    ],
    { parentId: p1.id },
  );
  const app2 = image(
    ['app:2'],
    10,
    [
      ['b', 100],
      ['l1', 10],
      ['m', 40],
      ['n', 50],
    ],
    { parentId: q.id },
  );

  it('parents are not candidates of their own; untagged ones go with their last child', () => {
    const plan = planRemovals(
      inventory([base, p1, p2, app1, q, app2], [container('c', app2)]),
      policy(),
      NOW,
    );
    const by = Object.fromEntries(plan.images.map((d) => [d.image.id, `${d.action}:${d.reason}`]));
    expect(by[app1.id]).toBe('remove:remove');
    expect(by[p2.id]).toBe('remove:parent');
    expect(by[p1.id]).toBe('keep:parent'); // q still needs it
    // A tagged parent is a candidate like Docker's prune -a has it, but only its tags can go.
    expect(by[base.id]).toBe('remove:remove');
    expect(plan.untagOnly).toEqual([base.id]);
    expect(plan.cascade).toEqual([p2.id]);
    expect(plan.estimatedBytes).toBe(20 + 30);
  });

  it('the whole chain goes when every child goes', () => {
    const plan = planRemovals(inventory([base, p1, p2, app1, q, app2]), policy(), NOW);
    expect(new Set(plan.cascade)).toEqual(new Set([p1.id, p2.id, q.id]));
    expect(plan.untagOnly).toEqual([]);
    expect(plan.estimatedBytes).toBe(100 + 10 + 20 + 30 + 40 + 50);
    // Images related by parents are deleted in one sequence, children first.
    expect(deletionGroups(plan).map((g) => g.map((i) => i.repoTags[0]))).toEqual([
      ['app:1', 'app:2', 'base:1'],
    ]);
  });

  it('a protected untagged parent is kept: its children are deleted with noprune', () => {
    const plan = planRemovals(
      inventory([base, p1, p2, app1]),
      policy({ protect: [parseProtectEntry(p1.id)] }),
      NOW,
    );
    expect(plan.noPrune).toEqual([app1.id]);
    expect(plan.cascade).toEqual([]);
    expect(plan.estimatedBytes).toBe(30);
  });

  const podman = (images: ImageInfo[]) =>
    inventory(images, [], {
      engine: { name: 'podman', version: '4.3.1', apiVersion: '1.41', imageStore: 'podman', id: '' },
    });

  it('on Podman, which ignores noprune, an image whose delete would take a protected untagged parent stays', () => {
    const plan = planRemovals(
      podman([base, p1, p2, app1]),
      policy({ protect: [parseProtectEntry(p1.id)] }),
      NOW,
    );
    const app = plan.images.find((d) => d.image.id === app1.id)!;
    expect(app).toMatchObject({ action: 'keep', reason: 'protected' });
    expect(app.detail).toBe(
      `its untagged parent ${p1.id.slice(7, 19)} is protected, and Podman deletes an untagged parent with its last child`,
    );
    // base:1 loses its tags only (its layers stay with app:1); nothing goes with app:1, noprune is not sent.
    expect(plan.images.filter((d) => d.action === 'remove').map((d) => d.image.id)).toEqual([base.id]);
    expect([plan.cascade, plan.noPrune, plan.estimatedBytes]).toEqual([[], [], 0]);
  });

  it('on Podman, a protected parent another child keeps, or a tagged one between, lets the image go', () => {
    // q keeps p1 while app:2 stays (in use here through its child list): app:1's walk stops at p1's other child.
    const withOther = planRemovals(
      inventory([base, p1, p2, app1, q, app2], [container('c', app2)], {
        engine: { name: 'podman', version: '5.8.6', apiVersion: '1.41', imageStore: 'podman', id: '' },
      }),
      policy({ protect: [parseProtectEntry(p1.id)] }),
      NOW,
    );
    expect(withOther.images.find((d) => d.image.id === app1.id)).toMatchObject({ action: 'remove' });
    expect(withOther.cascade).toEqual([p2.id]);
    // base:1 is tagged: Podman's walk stops below it, protected or not.
    const tagged = planRemovals(
      podman([base, p1, p2, app1]),
      policy({ protect: [parseProtectEntry('base')] }),
      NOW,
    );
    expect(tagged.images.find((d) => d.image.id === app1.id)).toMatchObject({ action: 'remove' });
  });
});

describe('exact bytes from the layer graph', () => {
  it('counts a shared layer once, and only when no remaining image has it', () => {
    const a = image(['a:1'], 1, [
      ['base', 1000],
      ['a', 10],
    ]);
    const b = image(['b:1'], 1, [
      ['base', 1000],
      ['b', 20],
    ]);
    const c = image(['c:1'], 1, [
      ['base', 1000],
      ['c', 40],
    ]);
    expect(bytesFreed([a, b], [c])).toBe(30);
    expect(bytesFreed([a, b, c], [])).toBe(1070);
  });

  it('a layer is identified by its chain: the same diff on another base is another layer', () => {
    const x = image(['x:1'], 1, [
      ['base1', 100],
      ['same', 7],
    ]);
    const y = image(['y:1'], 1, [
      ['base2', 100],
      ['same', 7],
    ]);
    expect(bytesFreed([x], [y])).toBe(107);
  });

  it('stopped containers keep their image and so its layers', () => {
    const used = image(['used:1'], 1, [
      ['base', 100],
      ['u', 5],
    ]);
    const other = image(['other:1'], 1, [
      ['base', 100],
      ['o', 9],
    ]);
    const plan = planRemovals(
      inventory([used, other], [container('stopped', used, 'exited')]),
      policy(),
      NOW,
    );
    expect(plan.estimatedBytes).toBe(9);
  });
});

describe('layerSizesFromHistory', () => {
  const L = (n: number) => `sha256:${hex(n)}`;
  it.each([
    ['one step per layer', [L(1), L(2)], [20, 10], [10, 20], true],
    ['metadata steps (size 0) are skipped', [L(1), L(2)], [0, 20, 0, 0, 10], [10, 20], true],
    ['an empty layer is placed by its diff ID', [L(1), EMPTY_LAYER, L(2)], [20, 0, 0, 10], [10, 0, 20], true],
    ['steps and layers agree in number', [L(1), L(2), L(3)], [5, 0, 7], [7, 0, 5], true],
    [
      'a zero-size content layer among metadata steps is a guess',
      [L(1), L(2), L(3)],
      [0, 7, 0, 5],
      [5, 7, 0],
      false,
    ],
  ])('%s', (_name, layers, history, sizes, exact) => {
    expect(layerSizesFromHistory(layers, history)).toEqual({ sizes, exact });
  });
});

describe('containers, networks, volumes and build cache', () => {
  const img = image(['app:1'], 30);
  const other = image(['tool:1'], 30);
  const running = container('web', img, 'running', { networks: ['backend'], volumes: ['data'] });
  const exited = container('job', other, 'exited', {
    sizeRw: 500,
    networks: ['jobs'],
    volumes: [hex(1).slice(0, 64)],
  });
  const fresh = container('fresh', other, 'created', { createdMs: NOW - 3_600_000 });
  const keepMe = container('keep-me', other, 'dead', { labels: { keep: '1' } });
  const net = (name: string, extra: Partial<NetworkInfo> = {}): NetworkInfo => ({
    id: hex(name.length + 5000),
    name,
    driver: 'bridge',
    scope: 'local',
    labels: {},
    createdMs: 0,
    ...extra,
  });
  const vol = (name: string, extra: Partial<VolumeInfo> = {}): VolumeInfo => ({
    name,
    driver: 'local',
    labels: {},
    size: 100,
    refCount: 0,
    createdMs: 0,
    ...extra,
  });
  const anon = hex(1).slice(0, 64);
  const inv = inventory([img, other], [running, exited, fresh, keepMe], {
    networks: [
      net('bridge'),
      net('host'),
      net('none'),
      net('backend'),
      net('jobs'),
      net('idle'),
      net('kept', { labels: { keep: '1' } }),
    ],
    volumes: [
      vol('data', { refCount: 1 }),
      vol(anon, { refCount: 1, size: 300 }),
      vol(hex(2).slice(0, 64), { size: 50 }),
      vol('named-cache'),
      vol('labelled', { labels: { 'com.docker.volume.anonymous': '' }, size: 7 }),
      vol(hex(3).slice(0, 64), { driver: 'nfs' }),
    ],
    buildCache: [
      { id: 'a', size: 1000, inUse: false, shared: false, lastUsedMs: NOW - 10 * DAY_MS },
      { id: 'b', size: 2000, inUse: false, shared: false, lastUsedMs: NOW - 5 * DAY_MS },
      { id: 'c', size: 4000, inUse: true, shared: false, lastUsedMs: NOW - 20 * DAY_MS },
      { id: 'd', size: 8000, inUse: false, shared: false, lastUsedMs: NOW - 3600 * 1000 },
      { id: 'e', size: 16000, inUse: false, shared: true, lastUsedMs: NOW - 30 * DAY_MS },
    ],
  });
  const all: Partial<Policy> = {
    containers: 'stopped',
    networks: 'unused',
    volumes: 'anonymous',
    buildCache: 'unused',
    protect: [parseProtectEntry('label=keep')],
    olderThan: { text: '1d', durationMs: DAY_MS },
  };
  const decided = (p: Partial<Policy>) =>
    Object.fromEntries(
      planRemovals(inv, policy(p), NOW).objects.map((o) => [
        `${o.kind}:${o.name}`,
        `${o.action}:${o.reason}`,
      ]),
    );

  it('stopped containers go unless protected or too recent; running ones never', () => {
    expect(decided(all)).toMatchObject({
      'container:web': 'keep:running',
      'container:job': 'remove:remove',
      'container:fresh': 'keep:too-recent',
      'container:keep-me': 'keep:protected',
    });
    expect(decided({ ...all, protect: [parseProtectEntry('job')] })['container:job']).toBe('keep:protected');
  });

  it('removing a container frees its image, network and anonymous volume in the same run', () => {
    const plan = planRemovals(inv, policy({ ...all, keepRecent: 0 }), NOW);
    const byTag = Object.fromEntries(plan.images.map((d) => [d.image.repoTags[0], d.reason]));
    expect(byTag['tool:1']).toBe('in-use'); // fresh and keep-me still use it
    expect(decided(all)).toMatchObject({
      'network:jobs': 'remove:remove',
      [`volume:${anon}`]: 'remove:remove',
    });
    expect(decided({ ...all, containers: 'none' })).toMatchObject({
      'network:jobs': 'keep:in-use',
      [`volume:${anon}`]: 'keep:in-use',
    });
  });

  it('networks: never the predefined ones, never one in use, never a protected one', () => {
    expect(decided(all)).toMatchObject({
      'network:bridge': 'keep:predefined',
      'network:host': 'keep:predefined',
      'network:none': 'keep:predefined',
      'network:backend': 'keep:in-use',
      'network:idle': 'remove:remove',
      'network:kept': 'keep:protected',
    });
  });

  it('volumes: only anonymous, unused and local ones; named volumes never', () => {
    expect(decided(all)).toMatchObject({
      'volume:data': 'keep:named',
      'volume:named-cache': 'keep:named',
      [`volume:${hex(2).slice(0, 64)}`]: 'remove:remove',
      'volume:labelled': 'remove:remove',
      [`volume:${hex(3).slice(0, 64)}`]: 'keep:not-local',
    });
    // On API 1.42 and later only the label marks an anonymous volume.
    const newer = planRemovals(
      { ...inv, engine: { ...inv.engine, apiVersion: '1.45' } },
      policy(all),
      NOW,
    ).objects;
    expect(newer.find((o) => o.name === hex(2).slice(0, 64))?.reason).toBe('named');
  });

  it('classes left at none decide nothing', () => {
    expect(Object.values(decided({})).every((v) => v === 'keep:not-selected')).toBe(true);
    expect(planRemovals(inv, policy({}), NOW).buildCache).toBeUndefined();
  });

  it('the estimate adds container layers, volumes and build cache to the image layers', () => {
    const plan = planRemovals(inv, policy(all), NOW);
    // Build cache: a and b are unused and older than a day; c is in use, d recent, e shared (frees nothing).
    expect(plan.buildCache).toMatchObject({ candidates: 3, estimatedBytes: 3000, until: '86400s' });
    expect(plan.estimate).toMatchObject({ containers: 500, volumes: 300 + 50 + 7, buildCache: 3000 });
    expect(plan.estimate.total).toBe(plan.estimate.images + 500 + 357 + 3000);
  });

  it('build-cache-keep keeps the most recently used cache', () => {
    // Own (unshared) cache totals 15000; keeping 14000 takes the oldest records until it fits: the shared
    // e (frees nothing) and a.
    const plan = planRemovals(inv, policy({ ...all, olderThan: undefined, buildCacheKeep: 14000 }), NOW);
    expect(plan.buildCache).toMatchObject({ candidates: 2, estimatedBytes: 1000, keepStorage: 14000 });
  });
});

describe('planLayerSizing: history only where /system/df cannot size the layers', () => {
  // base (100) <- a1 (10), a2 (20); base <- b (30) <- b-child (40); lone (50)
  const img = (id: string, layers: [string, number][]) => ({
    id,
    layers: layers.map(([k]) => k),
    size: layers.reduce((n, [, s]) => n + s, 0),
    sizes: layers.map(([, s]) => s),
  });
  const images = [
    img('a1', [
      ['base', 100],
      ['x1', 10],
    ]),
    img('a2', [
      ['base', 100],
      ['x2', 20],
    ]),
    img('b', [
      ['base', 100],
      ['y', 30],
    ]),
    img('b-child', [
      ['base', 100],
      ['y', 30],
      ['z', 40],
    ]),
    img('lone', [['solo', 50]]),
  ];
  const df = (ids: string[], shared: Record<string, number>) =>
    new Map(ids.map((id) => [id, { size: images.find((i) => i.id === id)!.size, shared: shared[id] }]));

  it('sizes unique tails from df and fetches one history per deepest shared layer', () => {
    const sizing = planLayerSizing(
      images,
      df(['a1', 'a2', 'b', 'b-child', 'lone'], { a1: 100, a2: 100, b: 130, 'b-child': 130, lone: 0 }),
    );
    // base and y are shared: the history of b-child (the deepest) covers both; lone shares nothing.
    expect(sizing.history.sort()).toEqual(['b-child']);
    const histories = new Map([['b-child', [40, 30, 100]]]);
    const sized = sizing.resolve(histories);
    for (const image of images)
      expect([image.id, sized.get(image.id)]).toEqual([image.id, { sizes: image.sizes, exact: true }]);
  });

  it('falls back to history when df does not list an image or reports no shared size', () => {
    const sizing = planLayerSizing(
      images,
      df(['a1', 'a2', 'b', 'lone'], { a1: 100, a2: 100, b: -1, lone: 0 }),
    );
    expect(sizing.history.sort()).toEqual(['b', 'b-child']);
  });
});

describe('planLayerSizing on the containerd image store', () => {
  it('sizes every image from its history: df sizes there include the content store', () => {
    const images = [
      { id: 'a', layers: ['base', 'x'], size: 999_999 },
      { id: 'b', layers: ['base', 'y'], size: 999_999 },
    ];
    const sizing = planLayerSizing(images, new Map(), false);
    expect(sizing.history.sort()).toEqual(['a', 'b']);
    const sized = sizing.resolve(
      new Map([
        ['a', [4096, 8192]],
        ['b', [12288, 8192]],
      ]),
    );
    expect(sized.get('a')).toEqual({ sizes: [8192, 4096], exact: true });
    expect(sized.get('b')).toEqual({ sizes: [8192, 12288], exact: true });
  });
});
