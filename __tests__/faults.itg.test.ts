// The bundled action when the daemon is not there, is not Docker, or misbehaves: unreachable sockets and
// ports, a server that never answers, an HTTP server that is not Docker, and (through a fault-injecting
// proxy in front of a private daemon) errors, dropped connections and silence on single deletes, and a
// daemon that goes away in the middle of a prune. Every case must end in bounded time.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { runAction, type ActionRun } from './support/action';
import { describeDocker, itWith, startDaemon, type PrivateDaemon } from './support/daemon';
import { clearDaemon, imageState, loadImages, type ImageSpec } from './support/fleet';
import {
  deletedImage,
  startFaultProxy,
  startNotDocker,
  startSilentServer,
  unusedPort,
  type FaultProxy,
  type LoopbackServer,
} from './support/proxy';

const NOW = Date.now();
const DAY = 86_400_000;
/** Ten unused images, all candidates with `images: unused` and `keep-recent: 0`: eight tagged, two dangling. */
const images: ImageSpec[] = [
  ...Array.from({ length: 8 }, (_, i) => ({
    tags: [`faults/app:${i + 1}`],
    layers: [
      { key: 'faults-base', bytes: 20_000 },
      { key: `faults-app-${i + 1}`, bytes: 5_000 + i * 100 },
    ],
    created: new Date(NOW - (30 + i) * DAY),
  })),
  ...[1, 2].map((i) => ({
    tags: [],
    name: `faults-dangling-${i}`,
    layers: [{ key: `faults-dangling-${i}`, bytes: 4_000 }],
    created: new Date(NOW - (50 + i) * DAY),
  })),
];
const PRUNE = { mode: 'prune', images: 'unused', 'keep-recent': '0' };

let daemon: PrivateDaemon;
/** Image IDs by tag / name of the last loaded fleet. */
let ids = new Map<string, string>();
const opened: { close(): Promise<void> }[] = [];

async function resetFleet(): Promise<void> {
  await clearDaemon(daemon.docker);
  ids = await loadImages(daemon.docker, images);
}

async function proxy(): Promise<FaultProxy> {
  const p = await startFaultProxy(daemon.socket);
  opened.push(p);
  return p;
}

/** Whether a proxied request deletes the image `ref` (by ID, by ID without `sha256:`, or by a tag). */
function deletes(req: { method: string; path: string }, ref: string): boolean {
  const target = deletedImage(req);
  if (!target) return false;
  const id = ids.get(ref)!;
  const names = [id, id.slice(7), ...images.flatMap((s, i) => (ids.get(`#${i}`) === id ? s.tags : []))];
  return names.includes(target) || (target.length >= 12 && id.slice(7).startsWith(target));
}

const lines = (text: string) => text.split(/\r?\n/);
const errorLines = (run: ActionRun) => lines(run.stdout).filter((l) => l.startsWith('::error'));
const warningLines = (run: ActionRun) => lines(run.stdout).filter((l) => l.startsWith('::warning'));
const short = (ref: string) => ids.get(ref)!.slice(7, 19);
/** A warning line naming the image (short ID or a tag) and carrying `message`. */
const warnsAbout = (run: ActionRun, ref: string, message: string) =>
  warningLines(run).some((l) => (l.includes(short(ref)) || l.includes(ref)) && l.includes(message));
const stateOf = (run: ActionRun, ref: string) =>
  (run.report.images as { id: string; state: string; message?: string }[]).find((i) => i.id === ids.get(ref));
const present = async () => new Set((await imageState(daemon.docker)).map((i) => i.id));

/** What a failed connection must say: the host tried and what to check. */
function expectUnreachable(run: ActionRun, host: string): void {
  expect(run.code).toBe(1);
  const errors = errorLines(run);
  expect(errors.length).toBeGreaterThan(0);
  expect(errors.join('\n')).toContain(host);
  expect(errors.join('\n')).toMatch(/docker-host|DOCKER_HOST/);
}

describeDocker('faults: unreachable daemons and failing API calls', () => {
  beforeAll(async () => {
    daemon = (await startDaemon('faults'))!;
  }, 60_000);
  afterAll(async () => {
    for (const o of opened) await o.close().catch(() => undefined);
    await daemon?.stop();
  }, 60_000);

  it('a unix socket that does not exist fails fast, naming the socket', async () => {
    const socket = '/tmp/sdp-faults-nowhere/docker.sock';
    expect(existsSync(socket)).toBe(false);
    const run = await runAction({ host: `unix://${socket}`, inputs: PRUNE, timeoutMs: 90_000 });
    expectUnreachable(run, socket);
    expect(run.durationMs).toBeLessThan(20_000);
  }, 120_000);

  it('a closed TCP port fails fast, naming the address', async () => {
    const port = await unusedPort();
    const run = await runAction({ host: `tcp://127.0.0.1:${port}`, inputs: PRUNE, timeoutMs: 90_000 });
    expectUnreachable(run, `127.0.0.1:${port}`);
    expect(run.durationMs).toBeLessThan(20_000);
  }, 120_000);

  it('a server that accepts connections and never answers fails within the ping timeout, not api-timeout', async () => {
    const silent: LoopbackServer = await startSilentServer();
    opened.push(silent);
    // api-timeout stays at its default (2m): connecting must be bounded on its own (~10 s at most).
    const run = await runAction({ host: silent.host, inputs: PRUNE, timeoutMs: 150_000 });
    expect(silent.connections).toBeGreaterThan(0);
    expectUnreachable(run, `127.0.0.1:${silent.port}`);
    expect(run.durationMs).toBeLessThan(20_000);
  }, 180_000);

  it('an HTTP server that is not Docker fails, naming the host', async () => {
    const other = await startNotDocker();
    opened.push(other);
    const run = await runAction({ host: other.host, inputs: PRUNE, timeoutMs: 90_000 });
    expect(other.paths.length).toBeGreaterThan(0);
    expectUnreachable(run, `127.0.0.1:${other.port}`);
    expect(run.durationMs).toBeLessThan(20_000);
  }, 120_000);

  itWith(
    ['unix-socket'],
    'an API call that hangs is bounded by api-timeout',
    async () => {
      await resetFleet();
      const before = await imageState(daemon.docker);
      const p = await proxy();
      // The networks: every inventory asks for them (Podman's image list is read from its files as root).
      p.rule = (req) =>
        req.method === 'GET' && /^(\/v[\d.]+)?\/networks/.test(req.path) ? { kind: 'hang' } : undefined;
      const run = await runAction({
        host: p.host,
        inputs: { ...PRUNE, 'api-timeout': '3s' },
        timeoutMs: 120_000,
      });
      expect(p.log.some((e) => e.fault === 'hang')).toBe(true);
      expect(run.code).toBe(1);
      expect(errorLines(run).length).toBeGreaterThan(0);
      expect(run.durationMs).toBeLessThan(20_000);
      expect(await imageState(daemon.docker)).toEqual(before);
      // The inventory never came: the summary and the report still say so, nothing done.
      expect(run.report).toMatchObject({ status: 'failed', error: { kind: 'inventory-failed' } });
      expect(run.report.error.message).toContain('Could not take an inventory');
      expect(run.report.totals.removed).toBe(0);
      expect(run.summary).toContain('Could not take an inventory');
      await p.close();
    },
    120_000,
  );

  itWith(
    ['unix-socket'],
    'HTTP 500 on some deletes: warnings naming those images, the rest removed, exit 0 (1 with fail-on-error)',
    async () => {
      const failing = ['faults/app:3', 'faults-dangling-2'];
      for (const failOnError of ['false', 'true']) {
        await resetFleet();
        const p = await proxy();
        p.rule = (req) =>
          failing.some((ref) => deletes(req, ref))
            ? { kind: 'status', code: 500, message: 'injected: driver failed removing layer' }
            : undefined;
        const run = await runAction({ host: p.host, inputs: { ...PRUNE, 'fail-on-error': failOnError } });
        await p.close();

        expect(p.log.filter((e) => e.fault === 'status 500').length).toBeGreaterThanOrEqual(failing.length);
        for (const ref of failing) {
          expect(warnsAbout(run, ref, 'injected: driver failed removing layer')).toBe(true);
          expect(stateOf(run, ref)).toMatchObject({ state: 'failed' });
          expect(stateOf(run, ref)?.message).toContain('injected: driver failed removing layer');
        }
        // Everything else went; the failed ones are still there.
        const left = await present();
        expect([...left].sort()).toEqual(failing.map((ref) => ids.get(ref)!).sort());
        const removed = (run.report.images as { state: string }[]).filter((i) => i.state === 'removed');
        expect(removed.length).toBe(images.length - failing.length);
        expect(run.outputs['removed-count']).toBe(String(images.length - failing.length));
        if (failOnError === 'false') {
          expect(run.code).toBe(0);
          expect(errorLines(run)).toEqual([]);
        } else {
          expect(run.code).toBe(1);
          expect(errorLines(run).length).toBeGreaterThan(0);
        }
      }
    },
    180_000,
  );

  itWith(
    ['unix-socket'],
    'more failures than GitHub keeps annotations for: 9 warnings, then one that counts the rest',
    async () => {
      await resetFleet();
      const p = await proxy();
      p.rule = (req) =>
        req.method === 'DELETE'
          ? { kind: 'status', code: 500, message: 'injected: disk on fire' }
          : undefined;
      const run = await runAction({ host: p.host, inputs: PRUNE });
      await p.close();
      expect(run.code).toBe(0);
      const warnings = warningLines(run);
      const failed = (run.report.images as { state: string }[]).filter((i) => i.state === 'failed').length;
      expect(failed).toBeGreaterThanOrEqual(10);
      expect(warnings.length).toBe(10);
      expect(warnings[9]).toContain(`${failed - 9} more warning(s)`);
      // None is lost: the rest are in the log.
      expect(lines(run.stdout).filter((l) => l.includes('injected: disk on fire')).length).toBe(failed);
    },
    120_000,
  );

  itWith(
    ['unix-socket'],
    'HTTP 409 on a delete: a warning naming the image and the conflict, the image kept, exit 0 (1 with fail-on-error)',
    async () => {
      const message =
        'conflict: unable to delete (injected) - image is being used by stopped container 0123abcd';
      for (const failOnError of ['false', 'true']) {
        await resetFleet();
        const p = await proxy();
        p.rule = (req) => (deletes(req, 'faults/app:4') ? { kind: 'status', code: 409, message } : undefined);
        const run = await runAction({ host: p.host, inputs: { ...PRUNE, 'fail-on-error': failOnError } });
        await p.close();

        expect(p.log.some((e) => e.fault === 'status 409')).toBe(true);
        expect(warnsAbout(run, 'faults/app:4', message)).toBe(true);
        expect(stateOf(run, 'faults/app:4')?.state).not.toBe('removed');
        expect([...(await present())]).toEqual([ids.get('faults/app:4')]);
        expect(run.outputs['removed-count']).toBe(String(images.length - 1));
        expect(run.code).toBe(failOnError === 'true' ? 1 : 0);
      }
    },
    120_000,
  );

  itWith(
    ['unix-socket'],
    'a dropped connection on a delete is a per-object error; the run goes on',
    async () => {
      await resetFleet();
      const p = await proxy();
      p.rule = (req) => (deletes(req, 'faults/app:5') ? { kind: 'drop' } : undefined);
      const run = await runAction({ host: p.host, inputs: PRUNE });
      await p.close();

      expect(p.log.some((e) => e.fault === 'drop')).toBe(true);
      expect(run.code).toBe(0);
      expect(
        warningLines(run).some((l) => l.includes(short('faults/app:5')) || l.includes('faults/app:5')),
      ).toBe(true);
      expect(stateOf(run, 'faults/app:5')).toMatchObject({ state: 'failed' });
      expect([...(await present())]).toEqual([ids.get('faults/app:5')]);
      expect(run.outputs['removed-count']).toBe(String(images.length - 1));
    },
    120_000,
  );

  itWith(
    ['unix-socket'],
    'deletes that hang time out after api-timeout as per-object errors, in bounded time',
    async () => {
      await resetFleet();
      const hung = ['faults/app:2', 'faults/app:7'];
      const p = await proxy();
      p.rule = (req) => (hung.some((ref) => deletes(req, ref)) ? { kind: 'hang' } : undefined);
      const run = await runAction({
        host: p.host,
        inputs: { ...PRUNE, 'api-timeout': '5s' },
        timeoutMs: 120_000,
      });
      await p.close();

      expect(p.log.filter((e) => e.fault === 'hang').length).toBeGreaterThanOrEqual(hung.length);
      expect(run.durationMs).toBeLessThan(40_000);
      expect(run.code).toBe(0);
      for (const ref of hung) {
        expect(warningLines(run).some((l) => l.includes(short(ref)) || l.includes(ref))).toBe(true);
        expect(stateOf(run, ref)).toMatchObject({ state: 'failed' });
      }
      expect([...(await present())].sort()).toEqual(hung.map((ref) => ids.get(ref)!).sort());
      expect(run.outputs['removed-count']).toBe(String(images.length - hung.length));
    },
    120_000,
  );

  itWith(
    ['unix-socket'],
    'a delete whose answer trickles in forever is ended by the whole-run limit (10 × api-timeout): exit 1, the rest removed',
    async () => {
      await resetFleet();
      const p = await proxy();
      // Podman's compat list and /system/df can take more than a second on a busy host (seen in CI on 4.3):
      // the api-timeout must fit the engine's inventory, or the run ends before it reaches the delete.
      const apiS = daemon.engine.startsWith('podman') ? 3 : 1;
      // A byte every 300 ms: the per-call timeout (idle time) never fires; only the run's limit ends it.
      p.rule = (req) => (deletes(req, 'faults/app:6') ? { kind: 'trickle', everyMs: 300 } : undefined);
      const run = await runAction({
        host: p.host,
        inputs: { ...PRUNE, 'api-timeout': `${apiS}s` },
        timeoutMs: 90_000,
      });
      await p.close();

      expect(p.log.some((e) => e.fault === 'trickle')).toBe(true);
      expect(run.code).toBe(1);
      expect(run.durationMs).toBeGreaterThanOrEqual(apiS * 9_000);
      expect(run.durationMs).toBeLessThan(apiS * 10_000 + 10_000);
      const errors = errorLines(run);
      expect(errors.length).toBe(1);
      expect(errors[0]).toContain(`time limit (${apiS * 10} s, 10 × api-timeout)`);
      expect(errors[0]).toContain(p.host);
      expect(stateOf(run, 'faults/app:6')).toMatchObject({ state: 'failed' });
      expect(stateOf(run, 'faults/app:6')?.message).toMatch(/time limit/);
      expect(run.outputs['removed-count']).toBe(String(images.length - 1));
      expect(run.summary).toMatch(/time limit/);
      expect([...(await present())]).toEqual([ids.get('faults/app:6')]);
    },
    120_000,
  );

  itWith(
    ['unix-socket'],
    "time-limit (a job hook's bound) ends a run whose delete trickles in forever, long before 10 × api-timeout",
    async () => {
      await resetFleet();
      const p = await proxy();
      // Long enough for the engine's inventory on a busy host (Podman's compat list: seconds).
      const limitS = daemon.engine.startsWith('podman') ? 20 : 10;
      p.rule = (req) => (deletes(req, 'faults/app:6') ? { kind: 'trickle', everyMs: 300 } : undefined);
      const run = await runAction({
        host: p.host,
        // api-timeout 2m: its rule alone would let the trickle run for 20 minutes.
        inputs: { ...PRUNE, 'api-timeout': '2m', 'time-limit': `${limitS}s` },
        timeoutMs: 90_000,
      });
      await p.close();

      expect(p.log.some((e) => e.fault === 'trickle')).toBe(true);
      expect(run.code).toBe(1);
      expect(run.durationMs).toBeGreaterThanOrEqual(limitS * 900);
      expect(run.durationMs).toBeLessThan(limitS * 1000 + 10_000);
      const errors = errorLines(run);
      expect(errors.length).toBe(1);
      expect(errors[0]).toContain(`time limit (${limitS} s, time-limit)`);
      expect(stateOf(run, 'faults/app:6')).toMatchObject({ state: 'failed' });
      expect(run.summary).toMatch(/time limit/);
      expect(run.report).toBeDefined();
    },
    120_000,
  );

  /** Runs a prune whose first three deletes go through at once and the rest are slowed; `stop` ends the daemon meanwhile. */
  async function pruneThenStop(p: FaultProxy, stop: () => void): Promise<ActionRun> {
    let deletesSeen = 0;
    p.rule = (req) => {
      if (!deletedImage(req)) return undefined;
      deletesSeen++;
      if (deletesSeen <= 3) return undefined;
      if (deletesSeen === 4) setTimeout(stop, 1000);
      return { kind: 'delay', ms: 3000 };
    };
    return runAction({ host: p.host, inputs: { ...PRUNE, 'api-timeout': '10s' }, timeoutMs: 120_000 });
  }

  /** The contract when the daemon goes away mid-prune: failed step, summary and report saying what was and was not removed. */
  function expectStoppedRun(run: ActionRun): { removed: string[]; notRemoved: string[] } {
    expect(run.code).toBe(1);
    expect(errorLines(run).length).toBeGreaterThan(0);
    expect(run.durationMs).toBeLessThan(60_000);
    expect(run.summary.trim()).not.toBe('');
    expect(run.report).toBeDefined();
    const rows = run.report.images as { id: string; state: string; message?: string }[];
    const removed = rows.filter((r) => r.state === 'removed').map((r) => r.id);
    const notRemoved = rows.filter((r) => r.state !== 'removed');
    // The three deletes that got through before the daemon went are reported as removed; the rest are not,
    // and each says why.
    expect(removed.length).toBe(3);
    expect(notRemoved.length).toBe(images.length - 3);
    for (const r of notRemoved) {
      expect(r.state).toBe('failed');
      expect(r.message ?? '').not.toBe('');
    }
    expect(run.summary).toMatch(/not attempted|failed|stopped|unreachable|not removed/i);
    return { removed, notRemoved: notRemoved.map((r) => r.id) };
  }

  itWith(
    ['unix-socket'],
    'the daemon going away mid-prune (its socket closes): exit 1, summary and report agree with the daemon',
    async () => {
      await resetFleet();
      const p = await proxy();
      // Closing the proxy is what the action sees of a stopped daemon: in-flight requests reset, the socket gone.
      const run = await pruneThenStop(p, () => void p.close());
      const { removed, notRemoved } = expectStoppedRun(run);
      // The real daemon is still there: what the report calls removed is gone, everything else is still there.
      const left = await present();
      for (const id of removed) expect(left.has(id)).toBe(false);
      for (const id of notRemoved) expect(left.has(id)).toBe(true);
    },
    120_000,
  );

  // Last: this kills the file's daemon.
  itWith(
    ['unix-socket'],
    'dockerd killed mid-prune: the run ends in bounded time with exit 1, a summary and a report',
    async () => {
      await resetFleet();
      const p = await proxy();
      const run = await pruneThenStop(p, () => process.kill(daemon.pid, 'SIGKILL'));
      await p.close();
      expect(p.log.some((e) => e.fault === 'upstream error')).toBe(true);
      expectStoppedRun(run);
    },
    120_000,
  );
});
