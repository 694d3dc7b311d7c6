// Two runs of the action at once on the same daemon (two processes started together, same inputs): both
// succeed, together they leave exactly what one run alone leaves, and no image is counted twice: an image
// the other run removed first is `gone` in this run's report, not `removed`. That is with a lock file each
// (runs that do not share one: other accounts, other hosts); sharing the clean-up lock, they take turns,
// and a prune that waited past lock-wait only reports.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { runAction, type ActionRun } from './support/action';
import { describeDocker, itWith, startDaemon, type PrivateDaemon } from './support/daemon';
import { clearDaemon, imageState, loadFleet, scaleFleet } from './support/fleet';
import { deletedImage, startFaultProxy, type FaultProxy } from './support/proxy';

const fleet = scaleFleet({ images: 60, used: 8, now: Date.now(), prefix: 'cc' });
const INPUTS = {
  mode: 'prune',
  images: 'unused',
  'keep-recent': '0',
  // Some images stay for a reason other than a container, so "what one run leaves" is not just the used ones.
  protect: 'label=com.example.team=team-1',
};

let daemon: PrivateDaemon;
const locks = mkdtempSync(join(tmpdir(), 'sdp-locks-'));
/** What a single run leaves on a fresh fleet, and how many images it removed. */
let reference: { id: string; tags: string[] }[] = [];
let referenceRemoved = 0;
const proxies: FaultProxy[] = [];

async function freshFleet(): Promise<Set<string>> {
  await clearDaemon(daemon.docker);
  await loadFleet(daemon.docker, fleet);
  return new Set((await imageState(daemon.docker)).map((i) => i.id));
}

interface Row {
  id: string;
  state: string;
  message?: string;
}

/** Two runs started together; checks everything the spec says about them. */
async function expectConcurrentRuns(host: () => string): Promise<[ActionRun, ActionRun]> {
  const before = await freshFleet();
  const own = (name: string) => ({ ...INPUTS, 'lock-file': join(locks, `${name}.lock`) });
  const runs = await Promise.all([
    runAction({ host: host(), inputs: own('a') }),
    runAction({ host: host(), inputs: own('b') }),
  ]);
  const after = await imageState(daemon.docker);

  for (const run of runs) {
    expect({ code: run.code, errors: run.stdout.split('\n').filter((l) => l.startsWith('::error')) }).toEqual(
      {
        code: 0,
        errors: [],
      },
    );
  }
  // The same end state as one run alone.
  expect(after).toEqual(reference);

  // removed-count adds up to the images that actually went, and each went in exactly one run.
  const actuallyRemoved = [...before].filter((id) => !after.some((i) => i.id === id)).sort();
  expect(actuallyRemoved.length).toBe(referenceRemoved);
  const counts = runs.map((r) => Number(r.outputs['removed-count']));
  expect(counts[0] + counts[1]).toBe(actuallyRemoved.length);
  const rows = runs.map((r) => r.report.images as Row[]);
  const removedBy = rows.map((rs) => new Set(rs.filter((r) => r.state === 'removed').map((r) => r.id)));
  rows.forEach((rs, i) => expect(removedBy[i].size).toBe(counts[i]));
  for (const id of removedBy[0]) expect(removedBy[1].has(id)).toBe(false);
  expect([...removedBy[0], ...removedBy[1]].sort()).toEqual(actuallyRemoved);

  // What the other run removed first is `gone` here; nothing failed.
  for (const [mine, other] of [
    [0, 1],
    [1, 0],
  ]) {
    for (const row of rows[mine]) {
      expect({ run: mine, ...row }).toEqual({
        run: mine,
        ...row,
        state: expect.stringMatching(/^(removed|gone|kept)$/),
      });
      if (row.state === 'gone') expect(removedBy[other].has(row.id)).toBe(true);
      if (removedBy[other].has(row.id)) expect(row.state).toBe('gone');
    }
  }
  return runs;
}

describeDocker('two runs at once on the same daemon', () => {
  beforeAll(async () => {
    daemon = (await startDaemon('concurrency'))!;
    const before = await freshFleet();
    const single = await runAction({ host: daemon.host, inputs: INPUTS });
    expect(single.code).toBe(0);
    reference = await imageState(daemon.docker);
    referenceRemoved = before.size - reference.length;
    expect(Number(single.outputs['removed-count'])).toBe(referenceRemoved);
    // A meaningful fleet: most images go, some stay for containers, protection.
    expect(referenceRemoved).toBeGreaterThan(30);
    expect(reference.length).toBeGreaterThan(8);
  }, 120_000);
  afterAll(async () => {
    for (const p of proxies) await p.close();
    await daemon?.stop();
    rmSync(locks, { recursive: true, force: true });
  }, 60_000);

  it('straight at the daemon: both exit 0, one run’s end state, every image removed by exactly one', async () => {
    await expectConcurrentRuns(() => daemon.host);
  }, 120_000);

  itWith(
    ['unix-socket'],
    'with slowed deletes, so that the two runs interleave image by image',
    async () => {
      const p = await startFaultProxy(daemon.socket);
      proxies.push(p);
      p.rule = (req) => (deletedImage(req) ? { kind: 'delay', ms: 40 + (req.n % 5) * 20 } : undefined);
      const runs = await expectConcurrentRuns(() => p.host);
      // They did overlap: a run met images the other had removed first.
      expect(runs.flatMap((run) => run.report.images as Row[]).some((r) => r.state === 'gone')).toBe(true);
      await p.close();
    },
    120_000,
  );

  it('sharing the clean-up lock they take turns: one removes everything, the other finds nothing left', async () => {
    const before = await freshFleet();
    const inputs = { ...INPUTS, 'lock-file': join(locks, 'shared.lock') };
    const runs = await Promise.all([
      runAction({ host: daemon.host, inputs }),
      runAction({ host: daemon.host, inputs }),
    ]);
    expect(await imageState(daemon.docker)).toEqual(reference);
    expect(runs.map((r) => r.code)).toEqual([0, 0]);
    const counts = runs.map((r) => Number(r.outputs['removed-count'])).sort((a, b) => a - b);
    expect(counts).toEqual([0, before.size - reference.length]);
    // Never side by side: no run met an image the other removed under it.
    expect(runs.flatMap((r) => r.report.images as Row[]).filter((r) => r.state === 'gone')).toEqual([]);
    expect(runs.map((r) => r.stdout).join('\n')).toContain('another clean-up of this daemon holds');
  }, 180_000);

  it('a prune that waits past lock-wait removes nothing, reports and says why; once free, it prunes', async () => {
    const before = await freshFleet();
    const file = join(locks, 'held.lock');
    // Held by a live process (this test's), as another run would hold it.
    writeFileSync(file, `${process.pid} 0123456789ab\n`, { mode: 0o600 });
    const inputs = { ...INPUTS, 'lock-file': file, 'lock-wait': '2s' };
    const skipped = await runAction({ host: daemon.host, inputs });
    expect(skipped.code).toBe(0);
    // A report: removed-count is what it would remove.
    expect(skipped.report.mode).toBe('report');
    expect(Number(skipped.outputs['removed-count'])).toBe(before.size - reference.length);
    expect(skipped.report.warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          new RegExp(
            `^another clean-up of this daemon \\(pid ${process.pid}\\) held the lock .*held\\.lock for 2s \\(lock-wait\\): this run removed nothing`,
          ),
        ),
      ]),
    );
    expect(skipped.stdout).toMatch(/::warning.*another clean-up of this daemon/);
    expect((await imageState(daemon.docker)).length).toBe(before.size);

    // Released while the next run waits: it takes the lock and prunes.
    setTimeout(() => rmSync(file, { force: true }), 1500);
    const waited = await runAction({ host: daemon.host, inputs: { ...inputs, 'lock-wait': '1m' } });
    expect(waited.code).toBe(0);
    expect(Number(waited.outputs['removed-count'])).toBe(before.size - reference.length);
    expect(waited.stdout).toContain(`holds ${file} (pid ${process.pid}): waiting up to 1m`);
    expect(await imageState(daemon.docker)).toEqual(reference);
  }, 180_000);
});
