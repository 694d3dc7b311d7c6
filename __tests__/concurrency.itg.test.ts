// Two runs of the action at once on the same daemon (two processes started together, same inputs): both
// succeed, together they leave exactly what one run alone leaves, and no image is counted twice: an image
// the other run removed first is `gone` in this run's report, not `removed`.
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
  const runs = await Promise.all([
    runAction({ host: host(), inputs: INPUTS }),
    runAction({ host: host(), inputs: INPUTS }),
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
});
