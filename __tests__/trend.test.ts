// The disk forecast and the re-fetch count as pure functions of the usage history, how a run's start and
// its prune record them, and how the report, the metrics, the summary and the table show them.
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { unaccountedOf, usedUnder } from '../src/engine/unaccounted';
import { forecastOf, findRefetches, refetchSummary, TREND_WINDOW_MS, type Trend } from '../src/policy/trend';
import {
  emptyState,
  parseState,
  recordRemovals,
  recordUsage,
  type DiskSample,
  type Observation,
} from '../src/policy/usage';
import { buildReport } from '../src/report/json-report';
import { metricsOf, renderMetrics } from '../src/report/metrics';
import { renderSummary } from '../src/report/summary';
import { renderTable } from '../src/report/table';
import { trendLines } from '../src/report/trend-lines';
import { factsOf, planOf } from './support/facts';

const H = 3_600_000;
const GB = 1e9;
const T0 = Date.parse('2026-12-01T00:00:00Z');

const sample = (hours: number, freeGb: number, extra: Partial<DiskSample> = {}): DiskSample => ({
  ms: T0 + hours * H,
  path: '/var/lib/docker',
  freeBytes: freeGb * GB,
  freeInodes: 1000,
  ...extra,
});

describe('forecastOf: time to full, linear over the gaps between runs', () => {
  it('is the free space now over the rate the host consumed it between runs', () => {
    // 1 GB/h for 3 hours, 30 GB free now: 30 hours to full.
    const f = forecastOf([sample(0, 40), sample(1, 39), sample(3, 37)], {
      freeBytes: 30 * GB,
      freeInodes: 1000,
    });
    expect(f).toEqual({
      samples: 3,
      spanMs: 3 * H,
      bytesPerHour: GB,
      msToFull: 30 * H,
      inodesPerHour: 0,
    });
  });

  it('leaves out what runs removed: the gap starts at the run’s end, from its free space after', () => {
    // Run 1 freed 20 GB (30 -> 50 between 0h and 0.5h); 2 GB consumed over the next 2 hours.
    const f = forecastOf(
      [
        sample(0, 30, { afterMs: T0 + H / 2, freeBytesAfter: 50 * GB, freeInodesAfter: 1100 }),
        sample(2.5, 48),
      ],
      { freeBytes: 48 * GB, freeInodes: 1000 },
    )!;
    expect(f.bytesPerHour).toBe(GB);
    expect(f.msToFull).toBe(48 * H);
    expect(f.spanMs).toBe(2 * H);
    // 100 inodes over 2 hours.
    expect(f.inodesPerHour).toBe(50);
    expect(f.msToInodesFull).toBe(20 * H);
  });

  it('orders the runs by their starts, whatever order they were written in', () => {
    // The run that started at 1h pruned 6 GB and finished last: 1 GB consumed in the first hour, 2 GB in
    // the 1.5 hours after its prune: 3 GB over 2.5 hours.
    const pruned = sample(1, 39, { afterMs: T0 + 1.5 * H, freeBytesAfter: 45 * GB, freeInodesAfter: 1000 });
    const samples = [sample(0, 40), sample(3, 43), pruned];
    expect(forecastOf(samples, { freeBytes: 43 * GB, freeInodes: 1000 })).toMatchObject({
      samples: 3,
      spanMs: 2.5 * H,
      bytesPerHour: 1.2 * GB,
    });
  });

  it('says not filling when the disk empties by itself, and nothing from one sample or a gap under a minute', () => {
    const f = forecastOf([sample(0, 10), sample(2, 12)], { freeBytes: 12 * GB, freeInodes: 1000 })!;
    expect(f.bytesPerHour).toBe(-GB);
    expect(f.msToFull).toBeUndefined();
    expect(forecastOf([sample(0, 10)], { freeBytes: GB, freeInodes: 1 })).toBeUndefined();
    expect(forecastOf([sample(0, 10), sample(0.01, 9)], { freeBytes: GB, freeInodes: 1 })).toBeUndefined();
  });
});

describe('findRefetches: removed images seen again', () => {
  const removed = {
    'sha256:a': { ms: T0, bytes: 100, tags: ['app:1'] },
    'sha256:b': { ms: T0, bytes: 200, tags: ['app:2', 'app:latest'] },
    'sha256:c': { ms: T0, bytes: 300, tags: ['lib:1'] },
    'sha256:late': { ms: T0 + 10 * H, bytes: 400, tags: ['late:1'] },
  };

  it('by the same ID, or by a tag it had on another image, each removal once; later removals not at all', () => {
    const present = new Map([
      ['sha256:a', ['app:1']],
      ['sha256:new', ['app:2', 'app:latest']],
      ['sha256:late', ['late:1']],
      ['sha256:other', ['lib:2']],
    ]);
    const { found, still } = findRefetches(removed, present, T0 + H);
    expect(found).toEqual([
      { id: 'sha256:a', bytes: 100, removedMs: T0, seenMs: T0 + H },
      { id: 'sha256:new', tag: 'app:2', bytes: 200, removedMs: T0, seenMs: T0 + H },
    ]);
    // A run that listed the images before `late` was removed does not count it as back.
    expect(Object.keys(still).sort()).toEqual(['sha256:c', 'sha256:late']);
  });
});

describe('the usage history records the trend', () => {
  const seen = (nowMs: number, images: Record<string, string[]>, freeGb?: number): Observation => ({
    daemonId: 'd',
    images: Object.keys(images),
    inUse: [],
    tags: images,
    nowMs,
    ...(freeGb === undefined ? {} : { disk: { path: '/data', freeBytes: freeGb * GB, freeInodes: 50 } }),
  });

  it('a sample per run start, completed by its prune, with its removals; a later run counts them back', () => {
    let state = recordUsage(emptyState(), seen(T0, { 'sha256:a': ['app:1'], 'sha256:b': ['app:2'] }, 10));
    state = recordRemovals(state, {
      daemonId: 'd',
      startMs: T0,
      nowMs: T0 + 60_000,
      removed: [{ id: 'sha256:a', ms: T0 + 60_000, bytes: 5 * GB, tags: ['app:1'] }],
      diskAfter: { freeBytes: 15 * GB, freeInodes: 60 },
    });
    expect(state.daemons.d.disk).toEqual([
      {
        ms: T0,
        path: '/data',
        freeBytes: 10 * GB,
        freeInodes: 50,
        afterMs: T0 + 60_000,
        freeBytesAfter: 15 * GB,
        freeInodesAfter: 60,
      },
    ]);
    // Two hours on, app:1 is back (pulled again, same ID).
    state = recordUsage(state, seen(T0 + 2 * H, { 'sha256:a': ['app:1'], 'sha256:b': ['app:2'] }, 13));
    expect(state.daemons.d.removed).toBeUndefined();
    expect(state.daemons.d.refetched).toEqual([
      { id: 'sha256:a', bytes: 5 * GB, removedMs: T0 + 60_000, seenMs: T0 + 2 * H },
    ]);
    expect(state.daemons.d.disk).toHaveLength(2);
    const summary = refetchSummary(state.daemons.d, T0 + 2 * H);
    expect(summary).toMatchObject({ count: 1, bytes: 5 * GB, newCount: 1 });
    // Seen again later: still one re-fetch, not new; after the window, none.
    state = recordUsage(state, seen(T0 + 3 * H, { 'sha256:a': ['app:1'] }, 12));
    expect(refetchSummary(state.daemons.d, T0 + 3 * H)).toMatchObject({ count: 1, newCount: 0 });
    state = recordUsage(state, seen(T0 + 2 * H + TREND_WINDOW_MS + 1, {}, 12));
    expect(state.daemons.d.refetched).toBeUndefined();
    // Samples older than the window went with it.
    expect(state.daemons.d.disk?.map((d) => d.ms)).toEqual([T0 + 3 * H, T0 + 2 * H + TREND_WINDOW_MS + 1]);
  });

  it('a sample of another path starts the series again; a run without one keeps it', () => {
    let state = recordUsage(emptyState(), seen(T0, {}, 10));
    state = recordUsage(state, seen(T0 + H, {}));
    expect(state.daemons.d.disk).toHaveLength(1);
    state = recordUsage(state, {
      ...seen(T0 + 2 * H, {}),
      disk: { path: '/elsewhere', freeBytes: 1, freeInodes: 1 },
    });
    expect(state.daemons.d.disk?.map((d) => d.path)).toEqual(['/elsewhere']);
  });

  it('survives the file: written and parsed back the same; broken records are dropped, not trusted', () => {
    let state = recordUsage(emptyState(), seen(T0, { 'sha256:a': ['app:1'] }, 10));
    state = recordRemovals(state, {
      daemonId: 'd',
      startMs: T0,
      nowMs: T0 + 1,
      removed: [{ id: 'sha256:a', ms: T0 + 1, bytes: 7, tags: ['app:1'] }],
    });
    expect(parseState(JSON.stringify(state)).state).toEqual(state);
    const hostile = JSON.parse(JSON.stringify(state));
    hostile.daemons.d.disk.push({ ms: 'soon', path: '/data', freeBytes: 1, freeInodes: 1 });
    hostile.daemons.d.removed['sha256:x'] = { ms: 1, bytes: 1, tags: [{ toString: 1 }] };
    hostile.daemons.d.refetched = [{ id: 'x', bytes: null, removedMs: 1, seenMs: 1 }, 'junk'];
    const parsed = parseState(JSON.stringify(hostile)).state.daemons.d;
    expect(parsed.disk).toEqual(state.daemons.d.disk);
    expect(parsed.removed).toEqual(state.daemons.d.removed);
    expect(parsed.refetched).toBeUndefined();
  });
});

describe('the trend in the report, the metrics, the summary and the table', () => {
  const trend: Trend = {
    forecast: {
      samples: 5,
      spanMs: 20 * H,
      bytesPerHour: 2 * GB,
      msToFull: 9 * H,
      inodesPerHour: -3,
    },
    refetch: {
      windowMs: TREND_WINDOW_MS,
      count: 2,
      bytes: 3 * GB,
      newCount: 1,
      recent: [{ id: 'sha256:a', tag: 'app:1\u001b[2J', bytes: GB, removedMs: T0, seenMs: T0 + H }],
    },
  };
  const facts = factsOf(planOf([], 0), T0 + H, { trend });

  it('JSON: the forecast in seconds (null: not filling), the re-fetches with their bytes', () => {
    const report = buildReport(facts, []);
    expect(report.trend).toEqual({
      forecast: {
        samples: 5,
        spanSeconds: 72_000,
        bytesPerHour: 2 * GB,
        secondsToFull: 32_400,
        inodesPerHour: -3,
        secondsToInodesFull: null,
      },
      refetched: {
        windowSeconds: 604_800,
        count: 2,
        bytes: 3 * GB,
        foundThisRun: 1,
        recent: [
          {
            id: 'sha256:a',
            tag: 'app:1\u001b[2J',
            bytes: GB,
            removedAt: '2026-12-01T00:00:00.000Z',
            seenAt: '2026-12-01T01:00:00.000Z',
          },
        ],
      },
    });
    expect(buildReport(factsOf(planOf([], 0), T0), []).trend).toBeNull();
  });

  it('metrics: time to full by resource (+Inf when not filling), samples, re-fetched images and bytes', () => {
    const run = { inputs: { mode: 'report' as const }, ok: true, endedMs: T0, durationMs: 1 };
    const text = renderMetrics(metricsOf({ facts }, run));
    const d = 'daemon="unix:///x.sock"';
    expect(text).toContain(`safe_docker_prune_disk_full_seconds{${d},resource="bytes"} 32400\n`);
    expect(text).toContain(`safe_docker_prune_disk_full_seconds{${d},resource="inodes"} +Inf\n`);
    expect(text).toContain(`safe_docker_prune_disk_forecast_samples{${d}} 5\n`);
    expect(text).toContain(`safe_docker_prune_refetched_images{${d}} 2\n`);
    expect(text).toContain(`safe_docker_prune_refetched_bytes{${d}} 3000000000\n`);
    const none = renderMetrics(metricsOf({ facts: factsOf(planOf([], 0), T0) }, run));
    expect(none).not.toMatch(/full_seconds|refetched/);
  });

  it('lines for a person, the same in the summary and the table', () => {
    expect(trendLines(trend)).toEqual([
      'Disk forecast: full in about 9h at 2.00 GB/h; inodes not filling (from 5 runs over 20h, linear, what runs removed left out)',
      'Re-fetched within 7d: 2 image(s), 3.00 GB (1 found by this run): removed by this tool, then pulled or built again; a budget or keep-recent this tight costs downloads',
    ]);
    expect(trendLines({ refetch: { ...trend.refetch, count: 0, bytes: 0, newCount: 0 } })[0]).toMatch(
      /^Disk forecast: not yet/,
    );
    expect(renderSummary(facts, [])).toContain('### Disk trend\n\nDisk forecast: full in about 9h');
    expect(renderTable(facts, [])).toContain('Disk trend\n  Disk forecast: full in about 9h');
  });
});

describe('usedUnder: what the disk holds under the data root', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sdp-used-'));
    mkdirSync(join(dir, 'a', 'b'), { recursive: true });
    writeFileSync(join(dir, 'a', 'one'), Buffer.alloc(300_000, 1));
    writeFileSync(join(dir, 'a', 'b', 'two'), Buffer.alloc(100_000, 2));
    linkSync(join(dir, 'a', 'one'), join(dir, 'hardlink'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('sums allocated blocks as du -sx does, a hard-linked file once', async () => {
    const used = await usedUnder(dir, { walk: true });
    const du = Number(execFileSync('du', ['-sxB1', dir], { encoding: 'utf8' }).split('\t')[0]);
    expect(used).toEqual({ path: dir, method: 'walk', usedBytes: du, complete: true });
    expect(du).toBeGreaterThanOrEqual(400_000);
    expect(du).toBeLessThan(700_000);
  });

  it('stops at its bound and says the figure is a lower bound; walks only when asked', async () => {
    const cut = await usedUnder(dir, { walk: true, limit: { ms: 60_000, entries: 2 } });
    expect(cut).toMatchObject({ method: 'walk', complete: false });
    expect(await usedUnder(dir, { walk: false })).toEqual({
      path: dir,
      why: 'it shares its filesystem with other files, and its files are summed only in a run with a budget',
    });
    expect(await usedUnder(join(dir, 'missing'), { walk: true })).toEqual({
      path: join(dir, 'missing'),
      why: 'it could not be read (ENOENT)',
    });
  });

  it('is the difference from the daemon’s figures in the report and the metrics', () => {
    const u = unaccountedOf(
      { path: '/var/lib/docker', method: 'filesystem', usedBytes: 33e9, complete: true },
      { layers: 12e9, containers: 0.4e9, volumes: 0.2e9, buildCache: 0 },
    );
    expect(u.accountedBytes).toBe(12.6e9);
    expect(u.unaccountedBytes).toBeCloseTo(20.4e9, -3);
    const facts = factsOf(planOf([], 0), T0, { unaccounted: u });
    expect(buildReport(facts, []).disk.unaccounted).toEqual(u);
    const run = { inputs: { mode: 'report' as const }, ok: true, endedMs: T0, durationMs: 1 };
    expect(renderMetrics(metricsOf({ facts }, run))).toContain(
      `safe_docker_prune_unaccounted_bytes{daemon="unix:///x.sock"} ${u.unaccountedBytes}\n`,
    );
    expect(renderTable(facts, [])).toContain(
      'Not accounted for by the daemon under /var/lib/docker: 20.4 GB (33.0 GB used, its own filesystem; the daemon counts 12.6 GB)',
    );
  });
});
