// Safety gates on a real daemon: `critical-containers` must be running (and healthy when they have a
// healthcheck) before anything is planned, and again after a prune. A failed gate fails the step, says
// which container and why in the log, the job summary and the JSON report, and removes nothing.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { runAction, type ActionRun } from './support/action';
import { describeDocker, itWith, startDaemon, type PrivateDaemon } from './support/daemon';
import {
  createContainers,
  createHealthcheckContainer,
  healthStatus,
  imageState,
  loadFleet,
  loadImages,
  sampleFleet,
  waitForHealth,
} from './support/fleet';
import { deletedImage, startFaultProxy, type FaultProxy } from './support/proxy';

const fleet = sampleFleet({ now: Date.now(), prefix: 'gates' });
const P = 'gates';
const BUSYBOX = `${P}/base:1`;
const PRUNE = { mode: 'prune', images: 'unused', 'keep-recent': '0' };
const bb = (...args: string[]) => ['CMD', '/bin/busybox', ...args];

let daemon: PrivateDaemon;
let healthyId = '';
const proxies: FaultProxy[] = [];

interface Gate {
  container: string;
  ok: boolean;
  reason: string;
}

/** Puts back every fleet image a previous prune removed (containers stay). */
const reload = () => loadImages(daemon.docker, fleet.images);
const errorLines = (run: ActionRun) => run.stdout.split('\n').filter((l) => l.startsWith('::error'));
/** The summary's lines from its gates heading to the next heading. */
function gatesSection(summary: string): string {
  const lines = summary.split('\n');
  const start = lines.findIndex((l) => /^#{1,6} .*gates/i.test(l));
  if (start < 0) return '';
  const end = lines.findIndex((l, i) => i > start && /^#{1,6} /.test(l));
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}
const gate = (gates: Gate[] | undefined, container: string) => gates?.find((g) => g.container === container);

/** A failed gate before planning: exit 1, the container and why in the log, summary and report; nothing removed. */
async function expectGateFailure(
  inputs: Record<string, string>,
  container: string,
  reason: RegExp,
): Promise<ActionRun> {
  const before = await imageState(daemon.docker);
  const run = await runAction({ host: daemon.host, inputs, timeoutMs: 120_000 });
  expect(run.code).toBe(1);
  expect(errorLines(run).some((l) => l.includes(container) && reason.test(l))).toBe(true);
  const section = gatesSection(run.summary);
  expect(section).not.toBe('');
  expect(section.split('\n').some((l) => l.includes(container) && reason.test(l))).toBe(true);
  expect(gate(run.report?.gates?.before, container)).toMatchObject({
    ok: false,
    reason: expect.stringMatching(reason),
  });
  expect(await imageState(daemon.docker)).toEqual(before);
  expect(run.outputs['removed-count'] ?? '0').toBe('0');
  return run;
}

describeDocker(
  'safety gates: critical containers',
  () => {
    beforeAll(async () => {
      daemon = (await startDaemon('gates'))!;
      await loadFleet(daemon.docker, fleet); // gates-running (running), gates-exited, gates-created
      healthyId = await createHealthcheckContainer(daemon.docker, {
        name: 'gate-healthy',
        image: BUSYBOX,
        test: bb('true'),
        intervalMs: 500,
      });
      await createHealthcheckContainer(daemon.docker, {
        name: 'gate-unhealthy',
        image: BUSYBOX,
        test: bb('false'),
        intervalMs: 500,
        retries: 1,
      });
      // Docker runs the first probe one interval after the start: `starting` for an hour.
      await createHealthcheckContainer(daemon.docker, {
        name: 'gate-starting',
        image: BUSYBOX,
        test: bb('true'),
        intervalMs: 3_600_000,
      });
      await waitForHealth(daemon.docker, 'gate-healthy', 'healthy');
      await waitForHealth(daemon.docker, 'gate-unhealthy', 'unhealthy');
    }, 120_000);
    afterAll(async () => {
      for (const p of proxies) await p.close();
      await daemon?.stop();
    }, 60_000);

    it('running and healthy critical containers (by name and by ID) pass; the prune goes ahead and checks again after', async () => {
      await reload();
      const before = (await imageState(daemon.docker)).length;
      const run = await runAction({
        host: daemon.host,
        inputs: { ...PRUNE, 'critical-containers': `${P}-running\n${healthyId}` },
      });
      expect(run.code).toBe(0);
      expect(errorLines(run)).toEqual([]);
      const removed = Number(run.outputs['removed-count']);
      expect(removed).toBeGreaterThan(0);
      expect((await imageState(daemon.docker)).length).toBe(before - removed);

      const gates = run.report.gates as { before: Gate[]; after: Gate[] };
      expect(gates.before).toHaveLength(2);
      expect(gates.after).toHaveLength(2);
      for (const phase of [gates.before, gates.after]) {
        expect(gate(phase, `${P}-running`)).toMatchObject({ ok: true });
        expect(gate(phase, healthyId)).toMatchObject({ ok: true });
      }
      const section = gatesSection(run.summary);
      expect(section).toContain(`${P}-running`);
      expect(section).toContain(healthyId);
    }, 120_000);

    it('a critical container that does not exist fails the step and nothing is removed', async () => {
      await reload();
      const run = await expectGateFailure(
        { ...PRUNE, 'critical-containers': `${P}-running, no-such-container` },
        'no-such-container',
        /not found/i,
      );
      expect(gate(run.report.gates.before, `${P}-running`)).toMatchObject({ ok: true });
    }, 120_000);

    it('an exited critical container fails the step', async () => {
      await expectGateFailure(
        { ...PRUNE, 'critical-containers': `${P}-exited` },
        `${P}-exited`,
        /not running.*exited/i,
      );
    }, 120_000);

    it('an unhealthy critical container fails at once (only `starting` is waited for)', async () => {
      expect(await healthStatus(daemon.docker, 'gate-unhealthy')).toBe('unhealthy');
      const run = await expectGateFailure(
        { ...PRUNE, 'critical-containers': 'gate-unhealthy' },
        'gate-unhealthy',
        /unhealthy/i,
      );
      // gate-timeout is at its default (60s): an unhealthy container is not waited for.
      expect(run.durationMs).toBeLessThan(30_000);
    }, 120_000);

    it('a critical container still starting after gate-timeout fails the step', async () => {
      expect(await healthStatus(daemon.docker, 'gate-starting')).toBe('starting');
      const run = await expectGateFailure(
        { ...PRUNE, 'critical-containers': 'gate-starting', 'gate-timeout': '3s' },
        'gate-starting',
        /starting/i,
      );
      expect(run.durationMs).toBeGreaterThanOrEqual(3_000);
      expect(run.durationMs).toBeLessThan(20_000);
    }, 120_000);

    it('a critical container that becomes healthy within gate-timeout is waited for, then passes', async () => {
      await reload();
      // Failed probes in the start period do not count: `starting` until /ready exists, ~4 s after the start.
      await createHealthcheckContainer(daemon.docker, {
        name: 'gate-slow',
        image: BUSYBOX,
        test: bb('test', '-e', '/ready'),
        intervalMs: 500,
        startPeriodMs: 120_000,
        cmd: [
          '/bin/busybox',
          'sh',
          '-c',
          '/bin/busybox sleep 4; /bin/busybox touch /ready; exec /bin/busybox sleep 3600',
        ],
      });
      try {
        expect(await healthStatus(daemon.docker, 'gate-slow')).toBe('starting');
        const run = await runAction({
          host: daemon.host,
          inputs: { ...PRUNE, 'critical-containers': 'gate-slow', 'gate-timeout': '30s' },
        });
        expect(run.code).toBe(0);
        expect(gate(run.report.gates.before, 'gate-slow')).toMatchObject({ ok: true });
        expect(gate(run.report.gates.after, 'gate-slow')).toMatchObject({ ok: true });
        expect(Number(run.outputs['removed-count'])).toBeGreaterThan(0);
        expect(run.durationMs).toBeGreaterThan(2_000); // it did wait
      } finally {
        await daemon.docker.getContainer('gate-slow').remove({ force: true });
      }
    }, 120_000);

    it('report mode reports a failed gate the same way and fails too', async () => {
      await reload();
      const run = await expectGateFailure(
        { mode: 'report', images: 'unused', 'keep-recent': '0', 'critical-containers': 'gate-unhealthy' },
        'gate-unhealthy',
        /unhealthy/i,
      );
      expect(run.report.gates.before).toHaveLength(1);
    }, 120_000);

    itWith(
      ['unix-socket'],
      'a critical container that stops during the prune fails the step after it, naming the container',
      async () => {
        await reload();
        await createContainers(daemon.docker, [{ name: 'gate-victim', image: BUSYBOX, state: 'running' }]);
        const p = await startFaultProxy(daemon.socket);
        proxies.push(p);
        let killed: Promise<unknown> | undefined;
        // The first delete stops the critical container (straight at the daemon), and every delete is slowed
        // so that the kill lands while the prune runs.
        p.rule = (req) => {
          if (!deletedImage(req)) return undefined;
          killed ??= daemon.docker.getContainer('gate-victim').kill();
          return { kind: 'delay', ms: 1500 };
        };
        const run = await runAction({
          host: p.host,
          inputs: { ...PRUNE, 'critical-containers': `gate-victim, ${P}-running` },
        });
        await p.close();
        expect(killed).toBeDefined();
        await killed;

        expect(run.code).toBe(1);
        expect(Number(run.outputs['removed-count'])).toBeGreaterThan(0); // the prune went ahead
        expect(errorLines(run).some((l) => l.includes('gate-victim') && /not running|exited/i.test(l))).toBe(
          true,
        );
        const gates = run.report.gates as { before: Gate[]; after: Gate[] };
        expect(gate(gates.before, 'gate-victim')).toMatchObject({ ok: true });
        expect(gate(gates.after, 'gate-victim')).toMatchObject({
          ok: false,
          reason: expect.stringMatching(/not running/i),
        });
        expect(gate(gates.after, `${P}-running`)).toMatchObject({ ok: true });
        const section = gatesSection(run.summary);
        expect(section.split('\n').some((l) => l.includes('gate-victim') && /not running/i.test(l))).toBe(
          true,
        );
      },
      120_000,
    );
  },
  ['run-containers'],
);
