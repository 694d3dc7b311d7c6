// The grace period (min-age, runner-images-min-age), keep-recent's ranking clocks, digest-pinned images
// and swarm services, on plain data: what a job in flight on a shared host still needs is kept.
import { describe, expect, it } from '@jest/globals';
import { arrivalOf, rankingClock } from '../src/policy/age';
import { planWithBudget } from '../src/policy/budget';
import { parseProtectEntry } from '../src/policy/protect';
import { planRemovals, type Policy } from '../src/policy/plan';
import type { ImageDecision, ImageInfo, Plan } from '../src/types';
import { inventoryOf } from './support/inventory';
import { containerOf, DAY_MS, HOUR_MS, imageOf, MINUTE_MS, SECOND_MS } from './support/objects';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const base: Policy = { mode: 'prune', images: 'unused', protect: [], keepRecent: 0 };
const withGrace: Policy = { ...base, minAgeMs: HOUR_MS, runnerImagesMinAgeMs: 6 * HOUR_MS };
const RUNNER_TAG = `0a1b2c:${'d'.repeat(32)}`;
const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

const decision = (plan: Plan, image: ImageInfo): ImageDecision =>
  plan.images.find((d) => d.image.id === image.id)!;
const removed = (plan: Plan) =>
  plan.images
    .filter((d) => d.action === 'remove')
    .map((d) => d.image.repoTags[0] ?? d.image.repoDigests[0] ?? d.image.id);

describe('min-age: what arrived recently stays', () => {
  // Built long ago, pulled (tagged here) 20 minutes ago: a later step of a job will run it.
  const pulled = imageOf(['app:1'], NOW - 30 * DAY_MS, { lastTagMs: NOW - 20 * MINUTE_MS });
  const old = imageOf(['app:0'], NOW - 30 * DAY_MS, { lastTagMs: NOW - 3 * DAY_MS });
  const built = imageOf(['app:2'], NOW - 5 * MINUTE_MS);
  const dangling = imageOf([], NOW - 10 * DAY_MS);

  it('keeps an image tagged, loaded or built within min-age, with the clock that said so', () => {
    const plan = planRemovals(inventoryOf([pulled, old, built, dangling]), withGrace, NOW);
    expect(decision(plan, pulled)).toMatchObject({
      action: 'keep',
      reason: 'too-recent',
      detail: 'arrived (pulled, loaded, built or tagged) 20m ago (min-age 1h)',
    });
    expect(decision(plan, built)).toMatchObject({
      reason: 'too-recent',
      detail: 'created 5m ago (min-age 1h)',
    });
    expect(removed(plan)).toEqual(['app:0', dangling.id]);
  });

  it('min-age 0 (and no min-age) gives the sets of Docker’s own prune', () => {
    for (const policy of [base, { ...withGrace, minAgeMs: 0, runnerImagesMinAgeMs: 0 }]) {
      const plan = planRemovals(inventoryOf([pulled, old, built, dangling]), policy, NOW);
      expect(removed(plan).sort()).toEqual(['app:0', 'app:1', 'app:2', dangling.id].sort());
    }
  });

  it('applies in dangling mode and in budget runs', () => {
    const fresh = imageOf([], NOW - 10 * DAY_MS, { lastTagMs: NOW - MINUTE_MS });
    const dangle = planRemovals(inventoryOf([fresh, dangling]), { ...withGrace, images: 'dangling' }, NOW);
    expect(decision(dangle, fresh).reason).toBe('too-recent');
    expect(removed(dangle)).toEqual([dangling.id]);

    const inventory = inventoryOf([pulled, old]);
    const budget = planWithBudget(inventory, { ...withGrace, maxUsage: 1 }, NOW, {
      disk: undefined,
      lastUsed: new Map(),
    });
    expect(decision(budget, pulled).reason).toBe('too-recent');
    expect(budget.budget!.steps.map((s) => s.name)).toEqual(['app:0']);
  });

  it('uses the usage history’s first sighting only where an earlier run left one', () => {
    // An untagged image the engine has no tag time for (the classic store), made long ago.
    const loaded = imageOf([], NOW - 10 * DAY_MS);
    // No history: a first run on a host does not keep everything.
    expect(decision(planRemovals(inventoryOf([loaded]), withGrace, NOW), loaded).action).toBe('remove');
    // History from an earlier run that did not see it: it arrived since that run.
    const since = new Map([[old.id, NOW - 2 * DAY_MS]]);
    expect(
      decision(planRemovals(inventoryOf([loaded]), { ...withGrace, firstSeen: since }, NOW), loaded),
    ).toMatchObject({
      reason: 'too-recent',
      detail: 'first seen by this tool 0s ago (min-age 1h)',
    });
    // Seen by a run three hours ago: past the grace period.
    const seen = new Map([[loaded.id, NOW - 3 * HOUR_MS]]);
    expect(
      decision(planRemovals(inventoryOf([loaded]), { ...withGrace, firstSeen: seen }, NOW), loaded).action,
    ).toBe('remove');
  });

  it('never reads the future: a tag time ahead of the clock counts as now', () => {
    const ahead = imageOf(['x:1'], NOW - DAY_MS, { lastTagMs: NOW + DAY_MS });
    expect(arrivalOf(ahead, undefined, NOW)).toEqual({ ms: NOW, by: 'tagged' });
  });

  it('runner-built action images have their own window (default 6h)', () => {
    const setup = imageOf([RUNNER_TAG], NOW - 2 * HOUR_MS, { lastTagMs: NOW - 2 * HOUR_MS });
    const stale = imageOf([`0a1b2c:${'e'.repeat(32)}`], NOW - 7 * HOUR_MS, { lastTagMs: NOW - 7 * HOUR_MS });
    const plan = planRemovals(inventoryOf([setup, stale]), { ...withGrace, images: 'none' }, NOW);
    expect(decision(plan, setup)).toMatchObject({
      reason: 'too-recent',
      detail:
        'runner-built action image arrived (pulled, loaded, built or tagged) 2h ago (runner-images-min-age 6h)',
    });
    expect(decision(plan, stale).action).toBe('remove');
    const off = planRemovals(inventoryOf([setup]), { ...withGrace, runnerImagesMinAgeMs: 0 }, NOW);
    expect(decision(off, setup).action).toBe('remove');
  });

  it('keeps a stopped container that finished, started or was created within min-age', () => {
    const img = imageOf(['svc:1'], NOW - 10 * DAY_MS);
    const finished = containerOf('just-ran', img, 'exited', NOW - 5 * DAY_MS, {
      startedMs: NOW - 40 * MINUTE_MS,
      finishedMs: NOW - 30 * MINUTE_MS,
    });
    const created = containerOf('about-to-start', img, 'created', NOW - 10 * MINUTE_MS);
    const done = containerOf('done', img, 'exited', NOW - 5 * DAY_MS, { finishedMs: NOW - 2 * DAY_MS });
    const plan = planRemovals(
      inventoryOf([img], [finished, created, done]),
      { ...withGrace, containers: 'stopped' },
      NOW,
    );
    const of = (name: string) => plan.objects.find((o) => o.name === name)!;
    expect(of('just-ran')).toMatchObject({
      action: 'keep',
      reason: 'too-recent',
      detail: 'finished or started 30m ago (min-age 1h)',
    });
    expect(of('about-to-start')).toMatchObject({
      action: 'keep',
      reason: 'too-recent',
      detail: 'created 10m ago (min-age 1h)',
    });
    expect(of('done').action).toBe('remove');
  });

  it('keeps build cache used within min-age (the until filter moves)', () => {
    const records = [
      { id: 'hot', size: 100, inUse: false, shared: false, lastUsedMs: NOW - 10 * MINUTE_MS },
      { id: 'cold', size: 300, inUse: false, shared: false, lastUsedMs: NOW - 2 * DAY_MS },
    ];
    const plan = planRemovals(
      inventoryOf([], [], { buildCache: records }),
      { ...withGrace, buildCache: 'unused' },
      NOW,
    );
    expect(plan.buildCache).toMatchObject({ until: '3600s', candidates: 1, estimatedBytes: 300 });
    const off = planRemovals(
      inventoryOf([], [], { buildCache: records }),
      { ...base, buildCache: 'unused' },
      NOW,
    );
    expect(off.buildCache).toMatchObject({ until: undefined, candidates: 2, estimatedBytes: 400 });
  });
});

describe('keep-recent ranks by what is newest, never by ID', () => {
  const policy: Policy = { ...base, keepRecent: 1 };

  it('same-second builds: the one tagged last is the newest', () => {
    const byArrival =
      '#1 newest of app/worker (keep-recent 1, by arrival on this host: their creation times are all alike or before 2000)';
    const second = NOW - DAY_MS;
    // Both created within one second; :2 was tagged (built) 400 ms after :1.
    const one = imageOf(['app/worker:1'], second, { lastTagMs: second + 100 });
    const two = imageOf(['app/worker:2'], second, { lastTagMs: second + 500 });
    for (const order of [
      [one, two],
      [two, one],
    ]) {
      const plan = planRemovals(inventoryOf(order), policy, NOW);
      expect(decision(plan, two)).toMatchObject({ reason: 'keep-recent' });
      expect(decision(plan, two).detail).toBe(byArrival);
      expect(removed(plan)).toEqual(['app/worker:1']);
      expect(plan.keepRecentClocks).toEqual({ 'app/worker': 'arrival' });
    }
  });

  it('reproducible builds stamped 1980: arrival decides', () => {
    const stamp = Date.parse('1980-01-01T00:00:01Z');
    const v1 = imageOf(['buildpack/app:v1'], stamp, { lastTagMs: NOW - 3 * DAY_MS });
    const v3 = imageOf(['buildpack/app:v3'], stamp, { lastTagMs: NOW - 1 * DAY_MS });
    const v2 = imageOf(['buildpack/app:v2'], stamp, { lastTagMs: NOW - 2 * DAY_MS });
    const plan = planRemovals(inventoryOf([v3, v1, v2]), policy, NOW);
    expect(decision(plan, v3)).toMatchObject({
      reason: 'keep-recent',
      detail:
        '#1 newest of buildpack/app (keep-recent 1, by arrival on this host: their creation times are all alike or before 2000)',
    });
    expect(removed(plan).sort()).toEqual(['buildpack/app:v1', 'buildpack/app:v2']);
    expect(plan.keepRecentClocks).toEqual({ 'buildpack/app': 'arrival' });
  });

  it('one created value shared by every image of a repository (after 2000) is a stamp too', () => {
    const stamp = Date.parse('2001-01-01T00:00:00Z');
    const members = [imageOf(['nix/x:a'], stamp), imageOf(['nix/x:b'], stamp), imageOf(['nix/x:c'], stamp)];
    expect(rankingClock(members)).toBe('arrival');
    expect(rankingClock([imageOf(['y:1'], stamp)])).toBe('created');
    expect(rankingClock([imageOf(['y:1'], stamp), imageOf(['y:2'], stamp + SECOND_MS)])).toBe('created');
  });

  it('images tied on both clocks with the last one kept are all kept: nothing tells which is newer', () => {
    const t = NOW - DAY_MS;
    const a = imageOf(['tie:a'], t);
    const b = imageOf(['tie:b'], t);
    const older = imageOf(['tie:old'], t - DAY_MS);
    const plan = planRemovals(inventoryOf([a, b, older]), policy, NOW);
    expect(decision(plan, a).detail).toBe('#1 newest of tie (keep-recent 1, by creation, then arrival)');
    expect(decision(plan, b).detail).toBe(
      '#1 newest of tie (keep-recent 1, by creation, then arrival, tied)',
    );
    expect(removed(plan)).toEqual(['tie:old']);
  });

  it('counts images pinned by digest in their repository', () => {
    const tagged = imageOf(['postgres:15'], NOW - 30 * DAY_MS);
    const pinned = imageOf([], NOW - DAY_MS, { repoDigests: [`postgres@${A}`] });
    const plan = planRemovals(inventoryOf([tagged, pinned]), policy, NOW);
    expect(decision(plan, pinned)).toMatchObject({ reason: 'keep-recent' });
    expect(removed(plan)).toEqual(['postgres:15']);
  });
});

describe('images pinned by digest', () => {
  const pinned = imageOf([], NOW - 30 * DAY_MS, { repoDigests: [`postgres@${A}`] });
  const other = imageOf([], NOW - 30 * DAY_MS, { repoDigests: [`postgres@${B}`] });

  it('protect: NAME covers them, NAME@DIGEST exactly that one', () => {
    const byName = planRemovals(
      inventoryOf([pinned, other]),
      { ...base, protect: [parseProtectEntry('postgres')] },
      NOW,
    );
    expect(removed(byName)).toEqual([]);
    const byDigest = planRemovals(
      inventoryOf([pinned, other]),
      { ...base, protect: [parseProtectEntry(`postgres@${A}`)] },
      NOW,
    );
    expect(decision(byDigest, pinned)).toMatchObject({
      reason: 'protected',
      detail: `matches protect entry "postgres@${A}"`,
    });
    expect(removed(byDigest)).toEqual([`postgres@${B}`]);
    expect(byDigest.unmatchedProtect).toEqual([]);
  });
});

describe('swarm services', () => {
  const current = imageOf(['web:2'], NOW - 30 * DAY_MS);
  const previous = imageOf(['web:1'], NOW - 40 * DAY_MS);
  const byDigest = imageOf([], NOW - 40 * DAY_MS, { repoDigests: [`worker@${A}`] });
  const unrelated = imageOf(['web:0'], NOW - 50 * DAY_MS);
  const services = [
    { service: 'web', image: 'web:2', previous: false },
    { service: 'web', image: 'web:1', previous: true },
    // scaled to zero, pinned by digest as `docker service create` resolves it
    { service: 'worker', image: `worker:latest@${A}`, previous: false },
  ];

  it('keeps the images of services’ specs and previous specs, even with no task running', () => {
    const plan = planRemovals(
      inventoryOf([current, previous, byDigest, unrelated], [], { services }),
      base,
      NOW,
    );
    expect(decision(plan, current)).toMatchObject({
      action: 'keep',
      reason: 'service',
      detail: 'named by swarm service web',
    });
    expect(decision(plan, previous)).toMatchObject({
      reason: 'service',
      detail: "named by swarm service web's previous spec (its rollback)",
    });
    expect(decision(plan, byDigest)).toMatchObject({
      reason: 'service',
      detail: 'named by swarm service worker',
    });
    expect(removed(plan)).toEqual(['web:0']);
  });

  it('matches `name` as name:latest and an ID as the image ID', () => {
    const latest = imageOf(['docker.io/library/cache:latest'], NOW - 30 * DAY_MS);
    const plan = planRemovals(
      inventoryOf([latest, unrelated], [], {
        services: [
          { service: 'cache', image: 'cache', previous: false },
          { service: 'pinned', image: unrelated.id, previous: false },
        ],
      }),
      base,
      NOW,
    );
    expect(removed(plan)).toEqual([]);
  });
});
