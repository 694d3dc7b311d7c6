// The command's front door as pure code: flags and variables, help, usage errors, and that the input
// table the command uses is the action's (names and defaults in action.yml).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main, EXIT } from '../src/cli';
import { helpText, parseCommandLine } from '../src/flags';
import { envNameOf, EXPRESSION_DEFAULTS, INPUT_SPECS, readInputs } from '../src/policy/inputs';
import type { RunFacts } from '../src/report/facts';
import type { Totals } from '../src/report/figures';
import { metricsOf, renderMetrics } from '../src/report/metrics';
import { VERSION } from '../src/version';
import { UsageError } from '../src/errors';

const root = join(__dirname, '..');

/** action.yml's inputs and their defaults, read with a small parser (the file's own layout). */
function actionInputs(): Map<string, string> {
  const text = readFileSync(join(root, 'action.yml'), 'utf8');
  const section = text.slice(text.indexOf('\ninputs:'), text.indexOf('\noutputs:'));
  const inputs = new Map<string, string>();
  let current = '';
  for (const line of section.split('\n')) {
    const name = /^ {2}([a-z-]+):\s*$/.exec(line);
    if (name) current = name[1];
    const def = /^ {4}default:\s*'?(.*?)'?\s*$/.exec(line);
    if (def && current) inputs.set(current, def[1]);
  }
  return inputs;
}

describe('one input table for both front doors', () => {
  it('has every action.yml input with the same default, and nothing else', () => {
    const declared = actionInputs();
    // The one exception, named: a workflow expression the command cannot evaluate has '' there.
    expect(declared.get('github-token')).toBe(EXPRESSION_DEFAULTS['github-token']);
    const expected = new Map(
      INPUT_SPECS.map((s) => [s.name, EXPRESSION_DEFAULTS[s.name] ?? s.default] as const),
    );
    expect(expected).toEqual(declared);
    expect(INPUT_SPECS.find((s) => s.name === 'github-token')?.default).toBe('');
  });

  it('names the variables in upper snake case', () => {
    expect(envNameOf('keep-recent')).toBe('SAFE_DOCKER_PRUNE_KEEP_RECENT');
    expect(envNameOf('mode')).toBe('SAFE_DOCKER_PRUNE_MODE');
  });

  it('keeps the version equal to package.json', () => {
    expect(VERSION).toBe(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
  });
});

describe('parseCommandLine', () => {
  it('takes --name value and --name=value; a flag beats its variable; lists repeat', () => {
    const cl = parseCommandLine(
      ['--mode', 'prune', '--keep-recent=3', '--protect', 'app:prod-*', '--protect', 'label=keep', '--json'],
      { SAFE_DOCKER_PRUNE_MODE: 'report', SAFE_DOCKER_PRUNE_IMAGES: 'unused' },
    );
    expect(cl.values.get('mode')).toBe('prune');
    expect(cl.values.get('keep-recent')).toBe('3');
    expect(cl.values.get('images')).toBe('unused');
    expect(cl.values.get('protect')).toBe('app:prod-*\nlabel=keep');
    expect(cl.json).toBe(true);
    const inputs = readInputs((n) => cl.values.get(n) ?? '', {});
    expect(inputs).toMatchObject({ mode: 'prune', keepRecent: 3, images: 'unused' });
    expect(inputs.protect.map((r) => r.entry)).toEqual(['app:prod-*', 'label=keep']);
  });

  it('reads --every, --metrics-file and their variables', () => {
    const cl = parseCommandLine(['--every', '15m'], { SAFE_DOCKER_PRUNE_METRICS_FILE: '/x/m.prom' });
    expect(cl.everyMs).toBe(15 * 60_000);
    expect(cl.metricsFile).toBe('/x/m.prom');
  });

  it.each([
    [['--nope'], 'unknown option --nope'],
    [['-x'], 'unknown option "-x"'],
    [['prune'], 'unexpected argument "prune"'],
    [['--mode'], '--mode needs a value'],
    [['--mode', '--json'], '--mode needs a value'],
    [['--json=1'], '--json takes no value'],
    [['--mode', 'prune', '--mode', 'report'], '--mode was given twice'],
    [['--every', '10'], '--every: "10" is not a duration'],
    [['--every', '100ms'], 'at least 1s'],
  ])('%j is a usage error: %s', (argv, message) => {
    expect(() => parseCommandLine(argv, {})).toThrow(UsageError);
    expect(() => parseCommandLine(argv, {})).toThrow(message);
  });

  it.each([
    [['--keep-recnt', '3'], 'unknown option --keep-recnt; did you mean --keep-recent?'],
    [['--mdoe=prune'], 'did you mean --mode?'],
    [['--protcet', 'x'], 'did you mean --protect?'],
    [['--metrics', 'f'], 'did you mean --metrics-file?'],
    [['-keep-recent', '3'], 'unknown option "-keep-recent"; did you mean --keep-recent?'],
    [['--Keep_Recent=3'], 'did you mean --keep-recent?'],
  ])('%j suggests the flag meant: %s', (argv, message) => {
    expect(() => parseCommandLine(argv, {})).toThrow(message);
  });

  it('suggests nothing for a flag far from every name', () => {
    expect(() => parseCommandLine(['--zzzzzz'], {})).toThrow(/^unknown option --zzzzzz \(see --help\)$/);
  });

  it('warns of SAFE_DOCKER_PRUNE_ variables that no option reads, with the name meant', () => {
    const cl = parseCommandLine([], {
      SAFE_DOCKER_PRUNE_KEEPRECENT: '3',
      SAFE_DOCKER_PRUNE_MODE: 'prune',
      SAFE_DOCKER_PRUNE_EVERY: '1h',
      SAFE_DOCKER_PRUNE_HELP: '1',
      SAFE_DOCKER_PRUNE_QQQQQQQ: 'x',
      OTHER_KEEPRECENT: '3',
    });
    expect(cl.warnings).toEqual([
      'SAFE_DOCKER_PRUNE_HELP is not a setting of this command and is ignored',
      'SAFE_DOCKER_PRUNE_KEEPRECENT is not a setting of this command and is ignored; did you mean SAFE_DOCKER_PRUNE_KEEP_RECENT?',
      'SAFE_DOCKER_PRUNE_QQQQQQQ is not a setting of this command and is ignored',
    ]);
    expect(parseCommandLine([], { SAFE_DOCKER_PRUNE_MIN_AGE: '0' }).warnings).toEqual([]);
  });

  it('keeps --help within 100 columns, with examples that parse', () => {
    const help = helpText('1.2.3');
    for (const line of help.split('\n')) expect(line.length).toBeLessThanOrEqual(100);
    const examples = help
      .split('\n')
      .filter((line) => line.startsWith('  safe-docker-prune'))
      .map((line) =>
        line
          .trim()
          .split(/\s+/)
          .slice(1)
          .map((arg) => arg.replace(/^'(.*)'$/, '$1')),
      );
    expect(examples.length).toBeGreaterThanOrEqual(3);
    for (const argv of examples) expect(() => parseCommandLine(argv, {})).not.toThrow();
  });

  it('lists every input in --help with its default', () => {
    const help = helpText('1.2.3');
    for (const spec of INPUT_SPECS) expect(help).toContain(`--${spec.name} `);
    expect(help).toContain('(default 2)');
    expect(help).toContain('Exit codes');
  });
});

describe('main: exit codes before any daemon is touched', () => {
  // A failure before the pass writes its report to the default private folder: one of this test's own.
  let home: string;
  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'sdp-cli-'));
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));
  const io = (env: Record<string, string> = {}) => {
    const out: string[] = [];
    const err: string[] = [];
    return {
      out,
      err,
      io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t), env: { HOME: home, ...env } },
    };
  };

  it('warns on stderr of a variable no option reads, and goes on', async () => {
    const h = io({ SAFE_DOCKER_PRUNE_MOD: 'prune' });
    expect(await main(['--version'], h.io)).toBe(EXIT.ok);
    expect(h.err.join('')).toContain(
      'warning: SAFE_DOCKER_PRUNE_MOD is not a setting of this command and is ignored; did you mean SAFE_DOCKER_PRUNE_MODE?',
    );
  });

  it('--help and --version exit 0 on stdout', async () => {
    const h = io();
    expect(await main(['--help'], h.io)).toBe(EXIT.ok);
    expect(h.out.join('')).toContain('--keep-recent');
    const v = io();
    expect(await main(['--version'], v.io)).toBe(EXIT.ok);
    expect(v.out.join('')).toBe(`safe-docker-prune ${VERSION}\n`);
  });

  it('an unknown flag or an invalid value exits 2 with the action’s message', async () => {
    const a = io();
    expect(await main(['--mode', 'delete'], a.io)).toBe(EXIT.usage);
    expect(a.err.join('')).toContain('mode: "delete" is not one of: report, prune');
    const b = io({ SAFE_DOCKER_PRUNE_KEEP_RECENT: 'two' });
    expect(await main([], b.io)).toBe(EXIT.usage);
    expect(b.err.join('')).toContain('keep-recent: "two" is not a whole number');
    const c = io();
    expect(await main(['--frobnicate'], c.io)).toBe(EXIT.usage);
    expect(c.out).toEqual([]);
  });

  it('a daemon that is not there exits 3', async () => {
    const a = io();
    expect(await main(['--docker-host', 'unix:///nonexistent/docker.sock'], a.io)).toBe(EXIT.unreachable);
    expect(a.err.join('')).toContain('unix:///nonexistent/docker.sock');
  });
});

describe('renderMetrics', () => {
  const pass = {
    daemon: 'unix:///var/run/docker.sock',
    mode: 'prune',
    ok: true,
    endedMs: 1_700_000_000_000,
    durationMs: 1234,
    removed: { images: 3, containers: 1, networks: 0, volumes: 0 },
    keptImages: 7,
    estimatedBytes: 1000,
    estimatedBytesLow: 1000,
    estimatedBytesHigh: 2500,
    reclaimedBytes: 990,
    diskFreeBefore: 5000,
    diskFreeAfter: 6000,
  };

  it('writes Prometheus text: HELP, TYPE and labelled samples', () => {
    const text = renderMetrics(pass);
    expect(text).toContain('# TYPE safe_docker_prune_removed gauge');
    expect(text).toContain(
      'safe_docker_prune_removed{daemon="unix:///var/run/docker.sock",mode="prune",kind="images"} 3',
    );
    expect(text).toContain(
      'safe_docker_prune_last_success_timestamp_seconds{daemon="unix:///var/run/docker.sock"} 1700000000',
    );
    expect(text).toContain(
      'safe_docker_prune_estimated_bytes_bound{daemon="unix:///var/run/docker.sock",mode="prune",bound="low"} 1000',
    );
    expect(text).toContain(
      'safe_docker_prune_estimated_bytes_bound{daemon="unix:///var/run/docker.sock",mode="prune",bound="high"} 2500',
    );
    expect(text).not.toContain('inodes');
    for (const line of text.trim().split('\n')) {
      expect(line).toMatch(/^(# (HELP|TYPE) \w+ .+|\w+\{[^}]*\} -?[\d.]+(e[+-]?\d+)?)$/);
    }
  });

  it('a failed pass keeps the last success time of the previous file', () => {
    const first = renderMetrics(pass);
    const failed = renderMetrics({ ...pass, ok: false, endedMs: 1_800_000_000_000 }, first);
    expect(failed).toContain(
      'safe_docker_prune_success{daemon="unix:///var/run/docker.sock",mode="prune"} 0',
    );
    expect(failed).toContain(
      '_last_success_timestamp_seconds{daemon="unix:///var/run/docker.sock"} 1700000000',
    );
  });
});

describe('metricsOf', () => {
  const run = {
    inputs: { dockerHost: undefined, mode: 'prune' as const },
    ok: true,
    endedMs: 5000,
    durationMs: 40,
  };
  const totals: Totals = {
    removed: 3,
    untagged: 1,
    kept: 7,
    gone: 0,
    failed: 0,
    removedContainers: 2,
    removedNetworks: 1,
    removedVolumes: 4,
    buildCacheBytes: 0,
    estimatedBytes: 1000,
    estimatedBytesLow: 900,
    estimatedBytesHigh: 2500,
    reclaimedBytes: 990,
  };
  // Only the fields metricsOf reads.
  const facts = (budget?: object) =>
    ({
      host: 'tcp://d:2375',
      plan: { budget },
      diskFreeBefore: 5000,
      diskFreeAfter: 6000,
      inodesFreeBefore: 10,
      inodesFreeAfter: 20,
    }) as unknown as RunFacts;

  it("maps an outcome's totals, disk figures and budget to the metrics input", () => {
    const budget = { metAtStart: false, metAfterPrune: true, shortfallBytes: 0 };
    expect(metricsOf({ facts: facts(budget), totals }, run)).toEqual({
      daemon: 'tcp://d:2375',
      mode: 'prune',
      ok: true,
      endedMs: 5000,
      durationMs: 40,
      removed: { images: 3, containers: 2, networks: 1, volumes: 4 },
      keptImages: 7,
      estimatedBytes: 1000,
      estimatedBytesLow: 900,
      estimatedBytesHigh: 2500,
      reclaimedBytes: 990,
      diskFreeBefore: 5000,
      diskFreeAfter: 6000,
      inodesFreeBefore: 10,
      inodesFreeAfter: 20,
      budgetMet: true,
      budgetShortfallBytes: 0,
    });
    // In report mode (no prune measured) whether the budget is met is as it was at the start.
    expect(metricsOf({ facts: facts({ metAtStart: false, shortfallBytes: 12 }), totals }, run)).toMatchObject(
      {
        budgetMet: false,
        budgetShortfallBytes: 12,
      },
    );
    const noBudget = metricsOf({ facts: facts(), totals }, run);
    expect(noBudget.budgetMet).toBeUndefined();
    expect(noBudget.budgetShortfallBytes).toBeUndefined();
  });

  it('without an outcome: zero counts, no disk figures, the daemon the inputs name (or the default socket)', () => {
    const failed = { ...run, ok: false };
    const none = metricsOf(undefined, failed);
    expect(none).toMatchObject({
      daemon: 'unix:///var/run/docker.sock',
      mode: 'prune',
      ok: false,
      endedMs: 5000,
    });
    expect(none.removed).toEqual({ images: 0, containers: 0, networks: 0, volumes: 0 });
    const counts = [
      'keptImages',
      'estimatedBytes',
      'estimatedBytesLow',
      'estimatedBytesHigh',
      'reclaimedBytes',
    ] as const;
    for (const key of counts) expect(none[key]).toBe(0);
    const absent = [
      'diskFreeBefore',
      'diskFreeAfter',
      'inodesFreeBefore',
      'inodesFreeAfter',
      'budgetMet',
    ] as const;
    for (const key of absent) expect(none[key]).toBeUndefined();
    const gated = metricsOf(
      { totals: undefined },
      { ...failed, inputs: { dockerHost: 'ssh://me@host', mode: 'report' } },
    );
    expect(gated).toMatchObject({ daemon: 'ssh://me@host', mode: 'report', keptImages: 0 });
    expect(renderMetrics(gated)).toContain(
      'safe_docker_prune_success{daemon="ssh://me@host",mode="report"} 0',
    );
  });
});
