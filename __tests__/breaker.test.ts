// The prune's circuit breaker (Stopper) against a scripted daemon: when it checks the daemon, when a
// passing check lets the run go on, and when it stops the run.
import { describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { BREAKER_LIMITS, Stopper, applyPlan } from '../src/engine/apply';
import { connectDocker, isRunTimeLimit } from '../src/engine/docker';
import type { Plan } from '../src/types';
import { FAKE_HOST as HOST, connError, fakeDaemon, httpError } from './support/fakeDaemon';

/** A daemon whose probe answers as `probe` says (it counts probes); no request is expected. */
const fakeDocker = (probe: () => Promise<void>, timeLeft = () => Infinity) => fakeDaemon({ probe, timeLeft });

describe('Stopper (circuit breaker)', () => {
  it('a single server error is the object’s own: no check, the run goes on', async () => {
    const docker = fakeDocker(async () => undefined);
    const stopper = new Stopper(docker);
    await stopper.record(httpError(500, 'driver failed removing layer'));
    await stopper.record();
    await stopper.record(httpError(500, 'driver failed removing layer'));
    expect(docker.probes).toBe(0);
    expect(await stopper.proceed()).toBe(true);
  });

  it(`${BREAKER_LIMITS.probeAfter} server errors in a row make it check; a passing check lets the run go on`, async () => {
    const docker = fakeDocker(async () => undefined);
    const stopper = new Stopper(docker);
    for (let i = 0; i < BREAKER_LIMITS.probeAfter; i++) await stopper.record(httpError(500, 'boom'));
    expect(docker.probes).toBe(1);
    expect(await stopper.proceed()).toBe(true);
    // A 404 or 409 is an answer: the count starts again.
    await stopper.record();
    for (let i = 0; i < BREAKER_LIMITS.probeAfter - 1; i++) await stopper.record(httpError(500, 'boom'));
    expect(docker.probes).toBe(1);
  });

  it('server errors and a failing check (a daemon shutting down): stops, naming the daemon and why', async () => {
    const docker = fakeDocker(async () => {
      throw connError('ECONNREFUSED', `connect ECONNREFUSED /tmp/test/docker.sock`);
    });
    const stopper = new Stopper(docker);
    const lease = 'error deleting lease: grpc: the client connection is closing';
    for (let i = 0; i < BREAKER_LIMITS.probeAfter; i++) await stopper.record(httpError(500, lease));
    expect(await stopper.proceed()).toBe(false);
    expect(stopper.reason).toContain(HOST);
    expect(stopper.reason).toMatch(/shutting down or gone/);
    expect(stopper.reason).toContain(lease);
  });

  it('one request without an answer makes it check at once; a hung daemon stops the run', async () => {
    const docker = fakeDocker(async () => {
      throw connError('ETIMEDOUT', 'no answer within 4 s');
    });
    const stopper = new Stopper(docker);
    await stopper.record(connError('ETIMEDOUT', 'no answer within 4 s'));
    expect(docker.probes).toBe(1);
    expect(stopper.reason).toMatch(/hung or unreachable/);
  });

  it(`server errors that go on while every check passes stop the run after ${BREAKER_LIMITS.stopAfter}`, async () => {
    const docker = fakeDocker(async () => undefined);
    const stopper = new Stopper(docker);
    for (let i = 1; i < BREAKER_LIMITS.stopAfter; i++) {
      await stopper.record(httpError(500, 'boom'));
      expect(stopper.reason).toBeUndefined();
    }
    await stopper.record(httpError(500, 'boom'));
    expect(stopper.reason).toMatch(
      new RegExp(`answers, but ${BREAKER_LIMITS.stopAfter} removal\\(s\\) in a row failed`),
    );
  });

  it('no removal starts while a check runs; concurrent failures share one check', async () => {
    let release!: () => void;
    const docker = fakeDocker(
      () =>
        new Promise<void>((_, reject) => {
          release = () => reject(connError('ECONNREFUSED', 'refused'));
        }),
    );
    const stopper = new Stopper(docker);
    const failures = [1, 2, 3].map(() => stopper.record(connError('ECONNRESET', 'socket hang up')));
    const next = stopper.proceed();
    let decided: boolean | undefined;
    void next.then((ok) => (decided = ok));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(decided).toBeUndefined();
    release();
    await Promise.all(failures);
    expect(await next).toBe(false);
    expect(docker.probes).toBe(1);
  });

  it('the whole run’s time limit stops the run before the next removal', async () => {
    let left = 1000;
    const stopper = new Stopper(
      fakeDocker(
        async () => undefined,
        () => left,
      ),
    );
    expect(await stopper.proceed()).toBe(true);
    left = 0;
    expect(await stopper.proceed()).toBe(false);
    expect(stopper.reason).toMatch(/time limit/);
  });
});

describe('applyPlan with a daemon that stops mid-run', () => {
  it('removes until the breaker trips, then marks every remaining image "not attempted"', async () => {
    const images = Array.from({ length: 40 }, (_, i) => ({
      id: `sha256:${String(i).padStart(64, '0')}`,
      parentId: '',
      repoTags: [],
      created: 0,
      size: 1,
      labels: {},
    }));
    const plan = {
      images: images.map((image) => ({ image, action: 'remove', reason: 'remove', detail: '' })),
      cascade: [],
      noPrune: [],
      untagOnly: [],
    } as unknown as Plan;
    let deletes = 0;
    let down = false;
    const docker = fakeDaemon({
      routes: {
        '* /**': ({ method }: { method: string }) => {
          if (method === 'DELETE' && ++deletes > 10) down = true;
          if (down) throw httpError(500, 'error deleting lease: grpc: the client connection is closing');
          return [];
        },
      },
      probe: async () => {
        if (down) throw connError('ECONNREFUSED', 'connect ECONNREFUSED');
      },
    });
    const stopper = new Stopper(docker);
    const results = await applyPlan(docker, plan, 1, stopper);
    expect(results.filter((r) => r.status === 'removed').length).toBe(10);
    expect(results.filter((r) => r.message?.startsWith('not attempted')).length).toBe(
      40 - 10 - BREAKER_LIMITS.probeAfter,
    );
    expect(stopper.reason).toMatch(/shutting down or gone/);
  });
});

describe('connectDocker: the whole run’s time limit', () => {
  it('fails a request in flight when the limit passes, and every later one at once', async () => {
    // A daemon that accepts connections and trickles a byte now and then: no per-call timeout fires.
    const dir = await mkdtemp('/tmp/sdp-unit-');
    const socket = path.join(dir, 'docker.sock');
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
      s.resume();
      s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
      const timer = setInterval(() => s.write('1\r\n \r\n'), 100);
      s.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    const docker = connectDocker(`unix://${socket}`, {
      timeoutMs: 1000,
      runTimeoutMs: 1500,
      runLimitRule: 'test rule',
    });
    try {
      const started = Date.now();
      const error = await docker.request('GET', '/images/json').catch((e: unknown) => e);
      expect(isRunTimeLimit(error)).toBe(true);
      expect(String((error as Error).message)).toMatch(/time limit \(2 s, test rule\).*sdp-unit-/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(docker.timeLeft()).toBeLessThanOrEqual(0);
      const later = Date.now();
      expect(isRunTimeLimit(await docker.request('GET', '/version').catch((e: unknown) => e))).toBe(true);
      expect(Date.now() - later).toBeLessThan(100);
    } finally {
      docker.close();
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
      delete process.env.DOCKER_HOST;
    }
  });
});
