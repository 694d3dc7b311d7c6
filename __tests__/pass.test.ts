// One pass (runPass) against the fake daemon: what it asks the daemon, what it removes, what it logs and
// reports, and why it fails; and the pure verdict, table by table.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readInputs } from '../src/policy/inputs';
import { runPass, runTimeLimit, verdict, type PassEnd, type RunHooks } from '../src/run';
import type { BudgetPlan, GateResult, ObjectResult, RemovalResult } from '../src/types';
import { connError, fakeDocker, httpError, type FakeContainer, type FakeDaemon } from './support/fakeDaemon';
import { containerOf, DAY_MS, imageOf } from './support/objects';

const NOW = Date.now();
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sdp-pass-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  delete process.env.SDP_DELETE_CONNECTIONS;
});

/** Inputs as the action reads them, with the report and the usage history in this test's folder. */
function inputsOf(values: Record<string, string>) {
  const all: Record<string, string> = {
    'report-file': join(dir, 'report.json'),
    'state-dir': join(dir, 'state'),
    ...values,
  };
  return readInputs((name) => all[name] ?? '', {});
}

/** Hooks that keep what the pass logs and warns of. */
function recorder(): RunHooks & { lines: string[]; warnings: string[] } {
  const lines: string[] = [];
  const warnings: string[] = [];
  return {
    lines,
    warnings,
    info: (line) => lines.push(line),
    warn: (w) => warnings.push(w),
    group: (_, fn) => fn(),
  };
}

const report = async () => JSON.parse(await readFile(join(dir, 'report.json'), 'utf8'));
/** The path of an image's delete (its ID encoded, as the engine sends it). */
const imagePath = (id: string) => `/images/${encodeURIComponent(id)}`;
const writes = (docker: FakeDaemon) => [...docker.callsTo('DELETE'), ...docker.callsTo('POST')];

/** Three untagged images a month old, one of them used by a running container. */
function world() {
  const [unused, used, other] = [0, 1, 2].map(() => imageOf([], NOW - 30 * DAY_MS));
  const web: FakeContainer = containerOf('web', used, 'running', NOW - 30 * DAY_MS);
  return { unused, used, other, web };
}

describe('runPass against a fake daemon', () => {
  it('report mode: deletes nothing, logs each decision with its reason, reports what would go', async () => {
    const { unused, used, other, web } = world();
    const docker = fakeDocker({ images: [unused, used, other], containers: [web] });
    const hooks = recorder();
    const outcome = await runPass(
      inputsOf({ mode: 'report', images: 'unused', protect: other.id }),
      docker,
      hooks,
    );

    expect(writes(docker)).toEqual([]);
    expect(outcome.failures).toEqual([]);
    expect(hooks.lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^remove: ${unused.id.slice(7, 19)}`)),
        expect.stringMatching(new RegExp(`^keep \\(in-use\\): ${used.id.slice(7, 19)}: .*web`)),
        expect.stringMatching(new RegExp(`^keep \\(protected\\): ${other.id.slice(7, 19)}`)),
      ]),
    );
    expect(hooks.lines.at(-1)).toBe('would remove 1 image(s); estimated 1.00 kB');
    const written = await report();
    expect(written.mode).toBe('report');
    expect(written.failures).toEqual([]);
    expect(
      Object.fromEntries(
        written.images.map((i: { id: string; state: string; reason: string }) => [i.id, [i.state, i.reason]]),
      ),
    ).toEqual({
      [unused.id]: ['would-remove', 'remove'],
      [used.id]: ['kept', 'in-use'],
      [other.id]: ['kept', 'protected'],
    });
  });

  it('a critical container that is not running fails the run first: no inventory, no delete', async () => {
    const { unused, used } = world();
    const db: FakeContainer = containerOf('db', used, 'exited', NOW - DAY_MS);
    const docker = fakeDocker({ images: [unused, used], containers: [db] });
    const hooks = recorder();
    const outcome = await runPass(
      inputsOf({ mode: 'prune', images: 'unused', 'critical-containers': 'db' }),
      docker,
      hooks,
    );

    expect(outcome.failures).toEqual(['safety gate failed, nothing was removed: db not running (exited)']);
    expect(outcome.facts).toBeUndefined();
    expect(docker.calls.map((c) => `${c.method} ${c.path}`)).toEqual(['GET /containers/db/json']);
    expect(hooks.lines).toEqual(['db: FAILED, not running (exited)']);
    expect(docker.images).toHaveLength(2);
    expect((await report()).failures).toEqual(outcome.failures);
  });

  it('a prune whose daemon goes away stops: the verdict counts failed and not attempted removals', async () => {
    process.env.SDP_DELETE_CONNECTIONS = '1';
    const images = Array.from({ length: 8 }, () => imageOf([], NOW - 30 * DAY_MS));
    const lease = 'error deleting lease: grpc: the client connection is closing';
    const docker = fakeDocker(
      { images },
      {
        routes: {
          'DELETE /images/*': () => {
            throw httpError(500, lease);
          },
        },
        probe: async () => {
          throw connError('ECONNREFUSED', 'connect ECONNREFUSED /tmp/test/docker.sock');
        },
      },
    );
    const hooks = recorder();
    const outcome = await runPass(inputsOf({ mode: 'prune', images: 'unused' }), docker, hooks);

    // Three server errors in a row make the breaker check the daemon, which refuses: nothing more is tried.
    expect(docker.callsTo('DELETE')).toHaveLength(3);
    expect(docker.probes).toBe(1);
    expect(outcome.failures).toEqual([
      expect.stringMatching(
        /^stopped: the daemon at unix:\/\/\/tmp\/test\/docker\.sock stopped accepting connections.*Of 8 planned removal\(s\): 0 done, 3 failed, 5 not attempted \(listed in the summary and the report\)$/,
      ),
    ]);
    const results = outcome.facts!.results!;
    expect(results.filter((r) => r.skipped)).toHaveLength(5);
    expect(results.filter((r) => r.skipped).every((r) => r.message?.startsWith('not attempted: '))).toBe(
      true,
    );
    // A warning for each removal that failed, none for those not attempted.
    expect(hooks.warnings.filter((w) => w.startsWith('could not remove image'))).toHaveLength(3);
    // Stopped: nothing is measured after it (one /system/df, the inventory's).
    expect(docker.callsTo('GET', /^\/system\/df$/)).toHaveLength(1);
    expect(outcome.facts!.usageAfter).toBeUndefined();
    expect(hooks.lines.at(-1)).toBe('removed 0 image(s); estimated 8.00 kB, measured unknown');
  });

  it('fail-on-error: an image the daemon refuses fails the run; without it, only a warning', async () => {
    for (const failOnError of [true, false]) {
      const { unused, other } = world();
      const docker = fakeDocker(
        { images: [unused, other] },
        {
          routes: {
            [`DELETE ${imagePath(other.id)}`]: () => {
              throw httpError(409, 'conflict: unable to delete (must be forced) - image is being used');
            },
          },
        },
      );
      const hooks = recorder();
      const outcome = await runPass(
        inputsOf({ mode: 'prune', images: 'unused', 'fail-on-error': String(failOnError) }),
        docker,
        hooks,
      );

      expect(docker.callsTo('DELETE').map((c) => c.path)).toEqual(
        expect.arrayContaining([imagePath(unused.id), imagePath(other.id)]),
      );
      expect(docker.images).toEqual([other]);
      expect(outcome.failures).toEqual(
        failOnError ? ['1 object(s) could not be removed (fail-on-error is true)'] : [],
      );
      expect(hooks.warnings).toEqual([
        expect.stringMatching(new RegExp(`^could not remove image ${other.id.slice(7, 19)}: conflict`)),
      ]);
      expect(hooks.lines.at(-1)).toBe('removed 1 image(s); estimated 2.00 kB, measured 1.00 kB');
    }
  });

  it('a budget that cannot be met: removes what it may, warns what holds the space, fails with fail-on-error', async () => {
    const { unused, used, other, web } = world();
    const docker = fakeDocker({ images: [unused, used, other], containers: [web] });
    const hooks = recorder();
    // The daemon uses 3000 bytes; 500 allowed; the image in use holds 1000 of them.
    const outcome = await runPass(
      inputsOf({ mode: 'prune', images: 'unused', 'max-usage': '500', 'fail-on-error': 'true' }),
      docker,
      hooks,
    );

    expect(
      docker
        .callsTo('DELETE')
        .map((c) => c.path)
        .sort(),
    ).toEqual([imagePath(unused.id), imagePath(other.id)].sort());
    expect(docker.images).toEqual([used]);
    const budget = outcome.facts!.plan.budget!;
    expect(budget.shortfallBytes).toBe(500);
    expect(budget.metAfterPrune).toBe(false);
    expect(budget.after?.usage).toBe(1000);
    expect(hooks.warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^the budget cannot be met: every allowed removal frees 2.00 kB of the 2.50 kB needed, 500 B short/,
        ),
      ]),
    );
    expect(outcome.failures).toEqual(['the budget is not met (fail-on-error is true)']);
    expect((await report()).failures).toEqual(outcome.failures);
  });
});

describe('verdict', () => {
  const gate = (container: string, ok: boolean, reason: string): GateResult => ({ container, ok, reason });
  const image = (
    id: string,
    status: RemovalResult['status'],
    extra: Partial<RemovalResult> = {},
  ): RemovalResult => ({
    id,
    status,
    deleted: [],
    untagged: [],
    ...extra,
  });
  const skipped = (id: string) => image(id, 'error', { message: 'not attempted: gone', skipped: true });
  const object = (id: string, status: ObjectResult['status']): ObjectResult => ({
    kind: 'container',
    id,
    status,
  });
  const prune = { mode: 'prune', failOnError: false } as const;
  const strict = { mode: 'prune', failOnError: true } as const;
  const budgetOf = (extra: Partial<BudgetPlan>) =>
    ({ shortfallBytes: 0, needBytes: 100, holding: [], ...extra }) as BudgetPlan;

  const cases: [string, PassEnd, string[], string[]][] = [
    ['a clean report', { inputs: { mode: 'report', failOnError: true }, gates: { before: [] } }, [], []],
    [
      'a gate before fails: it alone decides, in report mode "planned"',
      {
        inputs: { mode: 'report', failOnError: true },
        gates: { before: [gate('db', false, 'unhealthy'), gate('web', true, 'running')] },
        budget: budgetOf({ shortfallBytes: 5 }),
      },
      ['safety gate failed, nothing was planned: db unhealthy'],
      [],
    ],
    [
      'a stopped prune: counts done, failed and not attempted; fail-on-error adds nothing',
      {
        inputs: strict,
        gates: { before: [] },
        executed: {
          results: [
            image('a', 'removed'),
            image('b', 'error', { message: 'boom' }),
            skipped('c'),
            skipped('d'),
          ],
          objectResults: [object('e', 'gone')],
          stopped: 'the daemon went away',
        },
      },
      [
        'stopped: the daemon went away. Of 5 planned removal(s): 2 done, 1 failed, 2 not attempted (listed in the summary and the report)',
      ],
      [],
    ],
    [
      'errors and conflicts without fail-on-error: no failure',
      {
        inputs: prune,
        gates: { before: [] },
        executed: { results: [image('a', 'conflict')], objectResults: [object('b', 'error')] },
      },
      [],
      [],
    ],
    [
      'errors and conflicts with fail-on-error',
      {
        inputs: strict,
        gates: { before: [] },
        executed: {
          results: [image('a', 'conflict'), image('b', 'gone')],
          objectResults: [object('c', 'error')],
        },
      },
      ['2 object(s) could not be removed (fail-on-error is true)'],
      [],
    ],
    [
      'a build cache prune that failed, with fail-on-error',
      {
        inputs: strict,
        gates: { before: [] },
        executed: {
          results: [],
          objectResults: [],
          buildCacheResult: { status: 'error', reclaimedBytes: 0 },
        },
      },
      ['0 object(s) could not be removed (fail-on-error is true)'],
      [],
    ],
    [
      'a gate after the prune fails',
      {
        inputs: prune,
        gates: { before: [gate('db', true, 'running')], after: [gate('db', false, 'not running (exited)')] },
        executed: { results: [image('a', 'removed')], objectResults: [] },
      },
      ['after the prune: db not running (exited)'],
      [],
    ],
    [
      'a budget that cannot be met warns, with what holds the space',
      {
        inputs: { mode: 'report', failOnError: false },
        gates: { before: [] },
        budget: budgetOf({
          shortfallBytes: 40,
          holding: [{ kind: 'image', name: 'app:1', bytes: 60, reason: 'in-use' }],
        }),
      },
      [],
      [
        'the budget cannot be met: every allowed removal frees 60 B of the 100 B needed, 40 B short; the largest kept: image app:1 (60 B, in-use)',
      ],
    ],
    [
      'a budget not met as measured after the prune warns, and fails with fail-on-error after the other failures',
      {
        inputs: strict,
        gates: { before: [], after: [gate('db', false, 'unhealthy')] },
        executed: { results: [image('a', 'error')], objectResults: [] },
        budget: budgetOf({ metAfterPrune: false }),
      },
      [
        '1 object(s) could not be removed (fail-on-error is true)',
        'after the prune: db unhealthy',
        'the budget is not met (fail-on-error is true)',
      ],
      ['the budget is not met after the prune, as measured now (see the budget section)'],
    ],
    [
      'a budget met after the prune',
      {
        inputs: strict,
        gates: { before: [] },
        executed: { results: [], objectResults: [] },
        budget: budgetOf({ metAfterPrune: true }),
      },
      [],
      [],
    ],
  ];

  it.each(cases)('%s', (_, end, failures, warnings) => {
    expect(verdict(end)).toEqual({ failures, warnings });
  });
});

describe('runTimeLimit: the whole run bound', () => {
  it('is 10 × api-timeout, plus both gate waits with critical containers, unless time-limit says', () => {
    expect(runTimeLimit(readInputs(() => '', {}))).toEqual({
      runTimeoutMs: 1_200_000,
      runLimitRule: '10 × api-timeout',
    });
    const gated = readInputs((n) => ({ 'critical-containers': 'db', 'gate-timeout': '30s' })[n] ?? '', {});
    expect(runTimeLimit(gated).runTimeoutMs).toBe(1_260_000);
    // A job hook's bound wins, gates and all.
    const hook = readInputs((n) => ({ 'critical-containers': 'db', 'time-limit': '90s' })[n] ?? '', {});
    expect(runTimeLimit(hook)).toEqual({ runTimeoutMs: 90_000, runLimitRule: 'time-limit' });
  });
});
