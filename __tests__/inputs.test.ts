import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../src/errors';
import { parseAgeLimit, parseDurationMs, readInputs } from '../src/policy/inputs';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

const read = (values: Record<string, string>, env: Record<string, string | undefined> = {}) =>
  readInputs((name) => values[name] ?? '', env);

/** Runs `fn`, expecting an InputError for `input` and `value` whose message matches `why`. */
function expectInputError(fn: () => unknown, input: string, value: string, why: RegExp | string) {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(InputError);
  expect(error).toMatchObject({ name: 'InputError', input, value });
  const message = (error as Error).message;
  expect(message.startsWith(`${input}: ${JSON.stringify(value)} `)).toBe(true);
  expect(message).toMatch(why);
}

describe('InputError', () => {
  it('names the input and the value', () => {
    const e = new InputError(
      'older-than',
      '7 days',
      'is not a duration or timestamp; use 7d, 36h or 2026-01-31',
    );
    expect(e.message).toBe('older-than: "7 days" is not a duration or timestamp; use 7d, 36h or 2026-01-31');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('InputError');
  });
});

describe('readInputs defaults', () => {
  it('uses the defaults when nothing is set', () => {
    expect(read({}, { RUNNER_TEMP: '/runner/tmp', HOME: '/home/u' })).toEqual({
      mode: 'report',
      images: 'dangling',
      olderThan: undefined,
      protect: [],
      keepRecent: 2,
      keepRecentBy: 'created',
      minAgeMs: 3_600_000,
      runnerImagesMinAgeMs: 6 * 3_600_000,
      dockerHost: undefined,
      reportFile: path.join('/runner/tmp', 'safe-docker-prune-report.json'),
      criticalContainers: [],
      gateTimeoutMs: 60_000,
      apiTimeoutMs: 120_000,
      failOnError: false,
      containers: 'none',
      networks: 'none',
      buildCache: 'none',
      buildCacheKeep: undefined,
      volumes: 'none',
      freeSpace: undefined,
      freeInodes: undefined,
      maxUsage: undefined,
      stateDir: '/home/u/.cache/safe-docker-prune',
      lockWaitMs: 120_000,
      runnerImages: 'unused',
      buildxBuilders: 'none',
      prComment: false,
      githubToken: '',
    });
  });

  it('writes the report to a private folder outside Actions, never a fixed name in the temp folder', () => {
    for (const env of [{}, { RUNNER_TEMP: '' }, { HOME: '/home/u' }, { XDG_RUNTIME_DIR: '/run/user/1000' }]) {
      expect(path.dirname(read({}, env).reportFile)).not.toBe(os.tmpdir());
    }
    expect(read({}, { HOME: '/home/u' }).reportFile).toBe('/home/u/.cache/safe-docker-prune/report.json');
    expect(read({}, { XDG_CACHE_HOME: '/xdg', HOME: '/home/u' }).reportFile).toBe(
      '/xdg/safe-docker-prune/report.json',
    );
    expect(read({}, { XDG_RUNTIME_DIR: '/run/user/1000', HOME: '/home/u' }).reportFile).toBe(
      '/run/user/1000/safe-docker-prune/report.json',
    );
  });

  it('trims values', () => {
    const inputs = read({
      mode: ' prune\n',
      images: '\tunused ',
      'older-than': ' 7d ',
      'keep-recent': ' 3 ',
      'report-file': ' out/report.json ',
      'docker-host': ' tcp://docker:2375 ',
    });
    expect(inputs).toMatchObject({
      mode: 'prune',
      images: 'unused',
      olderThan: { text: '7d', durationMs: 7 * D },
      keepRecent: 3,
      reportFile: 'out/report.json',
      dockerHost: 'tcp://docker:2375',
    });
  });

  it('accepts prune with images: none and any keep-recent or older-than', () => {
    expect(read({ mode: 'prune', images: 'none', 'keep-recent': '0', 'older-than': '1d' })).toMatchObject({
      mode: 'prune',
      images: 'none',
      keepRecent: 0,
    });
  });
});

describe('mode and images', () => {
  it.each([
    ['mode', 'report'],
    ['mode', 'prune'],
    ['images', 'none'],
    ['images', 'dangling'],
    ['images', 'unused'],
  ])('%s: %s', (input, value) => expect(read({ [input]: value })[input as 'mode' | 'images']).toBe(value));

  it.each([
    ['mode', 'Prune', 'is not one of: report, prune'],
    ['mode', 'delete', 'is not one of: report, prune'],
    ['mode', 'dry-run', 'is not one of: report, prune'],
    ['images', 'all', 'is not one of: none, dangling, unused'],
    ['images', 'Dangling', 'is not one of: none, dangling, unused'],
    ['images', 'true', 'is not one of: none, dangling, unused'],
    ['runner-images', 'all', 'is not one of: unused, none'],
    ['runner-images', 'Unused', 'is not one of: unused, none'],
    ['pr-comment', 'yes', 'is not a boolean; use true or false'],
    ['buildx-builders', 'all', 'is not one of: none, stale'],
  ])('rejects %s: %s', (input, value, why) =>
    expectInputError(() => read({ [input]: value }), input, value, why),
  );

  it('reads runner-images, pr-comment and github-token', () => {
    expect(read({ 'runner-images': 'none' }).runnerImages).toBe('none');
    expect(read({ 'runner-images': ' unused ' }).runnerImages).toBe('unused');
    expect(read({ 'pr-comment': 'true', 'github-token': ' ghs_abc ' })).toMatchObject({
      prComment: true,
      githubToken: 'ghs_abc',
    });
  });
});

describe('parseDurationMs', () => {
  it.each<[string, number]>([
    ['90m', 90 * M],
    ['24h', 24 * H],
    ['36h', 36 * H],
    ['1h30m', 90 * M],
    ['1.5h', 90 * M],
    ['.5h', 30 * M],
    ['1.h', H],
    ['300s', 300 * S],
    ['500ms', 500],
    ['1500us', 1.5],
    ['1500µs', 1.5],
    ['1500μs', 1.5],
    ['2000000ns', 2],
    ['7d', 7 * D],
    ['2w', 14 * D],
    ['1w2d', 9 * D],
    ['2d12h', 60 * H],
    ['1h1h', 2 * H],
    ['0s', 0],
    ['0d', 0],
    ['+2h', 2 * H],
    ['-2h', -2 * H],
  ])('%s = %d ms', (text, ms) => expect(parseDurationMs(text)).toBeCloseTo(ms, 9));

  it.each([
    '',
    '0',
    '7',
    '1700000000',
    'd',
    '7 d',
    '7days',
    '7D',
    '1h 30m',
    'h1',
    '1.5.2h',
    '.h',
    '1y',
    '2026-01-31',
  ])('not a duration: %j', (text) => expect(parseDurationMs(text)).toBeUndefined());
});

describe('parseAgeLimit', () => {
  it.each<[string, number]>([
    ['90m', 90 * M],
    ['24h', 24 * H],
    ['1h30m', 90 * M],
    ['7d', 7 * D],
    ['2w', 14 * D],
    ['1w2d', 9 * D],
    ['0s', 0],
  ])('duration %s', (text, durationMs) =>
    expect(parseAgeLimit('older-than', text)).toEqual({ text, durationMs }),
  );

  it.each<[string, string]>([
    ['2026-01-31', '2026-01-31T00:00:00.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z'],
    ['2000-02-29', '2000-02-29T00:00:00.000Z'],
    ['2026-01-31T10:00', '2026-01-31T10:00:00.000Z'],
    ['2026-01-31T10:00:30', '2026-01-31T10:00:30.000Z'],
    ['2026-01-31T10:00:00Z', '2026-01-31T10:00:00.000Z'],
    ['2026-01-31t10:00:00z', '2026-01-31T10:00:00.000Z'],
    ['2026-01-31T10:00:00+02:00', '2026-01-31T08:00:00.000Z'],
    ['2026-01-31T10:00:00-05:30', '2026-01-31T15:30:00.000Z'],
    ['2026-01-31T00:30:00+01:00', '2026-01-30T23:30:00.000Z'],
    ['2026-01-31T10:00:00.25Z', '2026-01-31T10:00:00.250Z'],
    ['2026-01-31T10:00:00.123456789+00:00', '2026-01-31T10:00:00.123Z'],
    ['2026-01-31T10:00Z', '2026-01-31T10:00:00.000Z'],
    ['2026-01-31T23:59:59', '2026-01-31T23:59:59.000Z'],
    ['0050-06-01', '0050-06-01T00:00:00.000Z'],
  ])('timestamp %s', (text, iso) => {
    const limit = parseAgeLimit('older-than', text);
    expect(limit.text).toBe(text);
    expect(limit.durationMs).toBeUndefined();
    expect(new Date(limit.atMs!).toISOString()).toBe(iso);
  });

  it('keeps fractions of a second', () => {
    expect(parseAgeLimit('older-than', '2026-01-31T10:00:00.123456789Z').atMs).toBeCloseTo(
      Date.UTC(2026, 0, 31, 10) + 123.456789,
      6,
    );
  });

  it.each<[string, number]>([
    ['1700000000', 1_700_000_000_000],
    ['1700000000.5', 1_700_000_000_500],
    ['0', 0],
  ])('unix seconds %s', (text, atMs) => expect(parseAgeLimit('older-than', text)).toEqual({ text, atMs }));

  it('trims', () => expect(parseAgeLimit('older-than', ' 7d\n')).toEqual({ text: '7d', durationMs: 7 * D }));

  it.each<[string, RegExp]>([
    ['7 days', /is not a duration or timestamp; use 7d, 36h or 2026-01-31$/],
    ['7days', /is not a duration or timestamp/],
    ['1y', /is not a duration or timestamp/],
    ['yesterday', /is not a duration or timestamp/],
    ['1e3', /is not a duration or timestamp/],
    ['2026/01/31', /is not a duration or timestamp/],
    ['2026-1-31', /is not a duration or timestamp/],
    ['31-01-2026', /is not a duration or timestamp/],
    ['2026-01-31 10:00', /is not a duration or timestamp/],
    ['2026-01-31T10', /is not a duration or timestamp/],
    ['2026-01-31T10:00:00+0200', /is not a duration or timestamp/],
    ['-1700000000', /is not a duration or timestamp/],
    ['-7d', /is negative/],
    ['-0.5h', /is negative/],
    ['2026-02-30', /is not a valid date and time/],
    ['2025-02-29', /is not a valid date and time/],
    ['1900-02-29', /is not a valid date and time/],
    ['2026-04-31', /is not a valid date and time/],
    ['2026-13-01', /is not a valid date and time/],
    ['2026-00-10', /is not a valid date and time/],
    ['2026-01-00', /is not a valid date and time/],
    ['2026-01-31T24:00', /is not a valid date and time/],
    ['2026-01-31T10:60', /is not a valid date and time/],
    ['2026-01-31T10:00:60Z', /is not a valid date and time/],
    ['2026-01-31T10:00:00+24:00', /is not a valid date and time/],
    ['2026-01-31T10:00:00+02:60', /is not a valid date and time/],
    ['9'.repeat(400) + 'h', /is too large/],
  ])('rejects %j', (value, why) =>
    expectInputError(() => parseAgeLimit('older-than', value), 'older-than', value, why),
  );

  it('rejects through readInputs with the exact message', () => {
    expect(() => read({ 'older-than': '7 days' })).toThrow(
      'older-than: "7 days" is not a duration or timestamp; use 7d, 36h or 2026-01-31',
    );
  });
});

describe('protect', () => {
  const entries = (value: string) => read({ protect: value }).protect.map((rule) => rule.entry);

  it.each<[string, string[]]>([
    ['postgres:16', ['postgres:16']],
    ['postgres:16,redis', ['postgres:16', 'redis']],
    ['postgres:16, redis ,, ', ['postgres:16', 'redis']],
    ['postgres:16\nredis\n', ['postgres:16', 'redis']],
    ['postgres:16\r\nredis\r\n', ['postgres:16', 'redis']],
    ['a, b\nc\n\n  \nd,e', ['a', 'b', 'c', 'd', 'e']],
    ['# databases\npostgres:16\n  # caches, too\nredis', ['postgres:16', 'redis']],
    ['label=keep=true, 0123456789ab', ['label=keep=true', '0123456789ab']],
    ['', []],
    [' \n , \n', []],
  ])('%j', (value, expected) => expect(entries(value)).toEqual(expected));

  it('parses each entry', () => {
    expect(read({ protect: 'postgres:16\nlabel=keep\nsha256:0123456789AB' }).protect).toEqual([
      { kind: 'reference', entry: 'postgres:16', name: 'docker.io/library/postgres', tag: '16' },
      { kind: 'label', entry: 'label=keep', key: 'keep' },
      { kind: 'id', entry: 'sha256:0123456789AB', prefix: '0123456789ab' },
    ]);
  });

  it('names the bad entry', () =>
    expectInputError(
      () => read({ protect: 'postgres:16\nmy app, redis' }),
      'protect',
      'my app',
      /contains spaces/,
    ));
});

describe('keep-recent', () => {
  it.each<[string, number]>([
    ['0', 0],
    ['2', 2],
    ['10', 10],
    ['007', 7],
  ])('%s', (value, n) => expect(read({ 'keep-recent': value }).keepRecent).toBe(n));

  it.each(['-1', '1.5', 'abc', '1e3', '+1', '0x10', '2 3', '99999999999999999999'])('rejects %s', (value) =>
    expectInputError(
      () => read({ 'keep-recent': value }),
      'keep-recent',
      value,
      'is not a whole number of 0 or more',
    ),
  );
});

describe('keep-recent-by', () => {
  it('is created by default, or used', () => {
    expect(read({}).keepRecentBy).toBe('created');
    expect(read({ 'keep-recent-by': 'used' }).keepRecentBy).toBe('used');
  });

  it.each(['deployed', 'Used', 'created,used'])('rejects %s', (value) =>
    expectInputError(
      () => read({ 'keep-recent-by': value }),
      'keep-recent-by',
      value,
      'is not one of: created, used',
    ),
  );
});

describe('docker-host', () => {
  it.each([
    'unix:///var/run/docker.sock',
    'unix:///run/user/1000/docker.sock',
    'tcp://localhost:2375',
    'tcp://docker:2376',
    'tcp://10.0.0.5:2375/',
    'tcp://[::1]:2375',
    'npipe:////./pipe/docker_engine',
    'ssh://user@host',
    'ssh://deploy@build.example.com:2222',
  ])('accepts %s', (value) => expect(read({ 'docker-host': value }).dockerHost).toBe(value));

  it('falls back to DOCKER_HOST', () => {
    expect(read({}, { DOCKER_HOST: 'tcp://docker:2375' }).dockerHost).toBe('tcp://docker:2375');
    expect(read({}, { DOCKER_HOST: '' }).dockerHost).toBeUndefined();
    expect(read({}, { DOCKER_HOST: '  ' }).dockerHost).toBeUndefined();
    expect(read({ 'docker-host': 'unix:///a.sock' }, { DOCKER_HOST: 'tcp://docker:2375' }).dockerHost).toBe(
      'unix:///a.sock',
    );
  });

  it.each<[string, RegExp]>([
    ['tcp://docker', /has no port; add it, e\.g\. :2375 \(or :2376 for TLS\)/],
    ['tcp://docker/', /has no port/],
    ['tcp://docker:0', /port outside 1-65535/],
    ['tcp://docker:65536', /port outside 1-65535/],
    ['/var/run/docker.sock', /is a bare path; use unix:\/\/\/var\/run\/docker\.sock$/],
    [
      'unix://var/run/docker.sock',
      /is not a Docker host; use unix:\/\/\/path\/to\/docker.sock, tcp:\/\/HOST:PORT/,
    ],
    ['unix://', /is not a Docker host/],
    ['unix:///', /is not a Docker host/],
    ['npipe://', /is not a Docker host/],
    ['ssh://host', /is not a Docker host/],
    ['docker:2375', /is not a Docker host/],
    ['http://docker:2375', /is not a Docker host/],
    ['tcp://doc ker:2375', /is not a Docker host/],
  ])('rejects %s', (value, why) =>
    expectInputError(() => read({ 'docker-host': value }), 'docker-host', value, why),
  );

  it('names DOCKER_HOST when the bad value came from the environment', () =>
    expectInputError(
      () => read({}, { DOCKER_HOST: 'tcp://docker' }),
      'DOCKER_HOST',
      'tcp://docker',
      /has no port/,
    ));
});

describe('gates, timeouts and fail-on-error', () => {
  it.each([
    [
      { 'critical-containers': 'db, /cache\n# comment\nweb-1' },
      'criticalContainers',
      ['db', 'cache', 'web-1'],
    ],
    [{ 'critical-containers': '0123456789ab' }, 'criticalContainers', ['0123456789ab']],
    [{ 'gate-timeout': '90s' }, 'gateTimeoutMs', 90_000],
    [{ 'api-timeout': '1m30s' }, 'apiTimeoutMs', 90_000],
    [{ 'time-limit': '5m' }, 'timeLimitMs', 300_000],
    [{}, 'timeLimitMs', undefined],
    [{ 'fail-on-error': 'true' }, 'failOnError', true],
    [{ 'fail-on-error': 'False' }, 'failOnError', false],
  ] as [Record<string, string>, string, unknown][])('%j gives %s', (inputs, field, value) => {
    expect((read(inputs) as unknown as Record<string, unknown>)[field]).toEqual(value);
  });

  it.each([
    ['critical-containers', 'db, bad name', 'critical-containers: "bad name" is not a container name or ID'],
    ['gate-timeout', '0s', 'gate-timeout: "0s" is not a positive duration'],
    ['gate-timeout', 'soon', 'gate-timeout: "soon" is not a positive duration'],
    ['api-timeout', '-5s', 'api-timeout: "-5s" is not a positive duration'],
    ['time-limit', '0s', 'time-limit: "0s" is not a positive duration'],
    ['time-limit', 'forever', 'time-limit: "forever" is not a positive duration'],
    ['fail-on-error', 'yes', 'fail-on-error: "yes" is not a boolean; use true or false'],
  ])('%s: %j is rejected by name', (input, value, message) => {
    expect(() => read({ [input]: value })).toThrow(message);
  });
});

describe('the other classes', () => {
  it.each([
    [{ containers: 'stopped' }, 'containers', 'stopped'],
    [{ networks: 'unused' }, 'networks', 'unused'],
    [{ volumes: 'anonymous' }, 'volumes', 'anonymous'],
    [{ 'build-cache': 'unused', 'build-cache-keep': '5GB' }, 'buildCacheKeep', 5e9],
    [{ 'build-cache': 'unused', 'build-cache-keep': '512MiB' }, 'buildCacheKeep', 512 * 1024 ** 2],
    [{ 'build-cache': 'unused', 'build-cache-keep': '1000' }, 'buildCacheKeep', 1000],
  ] as [Record<string, string>, string, unknown][])('%j gives %s', (inputs, field, value) => {
    expect((read(inputs) as unknown as Record<string, unknown>)[field]).toEqual(value);
  });

  it.each([
    [{ containers: 'all' }, 'containers: "all" is not one of: none, stopped'],
    [{ volumes: 'named' }, 'volumes: "named" is not one of: none, anonymous'],
    [{ 'build-cache': 'unused', 'build-cache-keep': 'lots' }, 'build-cache-keep: "lots" is not a size'],
    [{ 'build-cache-keep': '5GB' }, 'build-cache-keep: "5GB" needs build-cache: unused'],
  ])('%j is rejected by name', (inputs, message) => {
    expect(() => read(inputs)).toThrow(message);
  });
});

describe('older-than in the future', () => {
  it('is rejected: every image would be a candidate', () => {
    const now = Date.parse('2026-06-01T00:00:00Z');
    expect(() => readInputs((n) => ({ 'older-than': '2026-07-01' })[n] ?? '', {}, now)).toThrow(
      'older-than: "2026-07-01" is in the future',
    );
    expect(readInputs((n) => ({ 'older-than': '2026-05-01' })[n] ?? '', {}, now).olderThan?.atMs).toBe(
      Date.parse('2026-05-01T00:00:00Z'),
    );
  });
});

describe('budget inputs', () => {
  it('reads free-space as a size or a percentage', () => {
    expect(read({ 'free-space': '20GB' }).freeSpace).toEqual({ text: '20GB', amount: 20e9 });
    expect(read({ 'free-space': '15GiB' }).freeSpace).toEqual({ text: '15GiB', amount: 15 * 1024 ** 3 });
    expect(read({ 'free-space': '15%' }).freeSpace).toEqual({ text: '15%', percent: 15 });
    expect(read({ 'free-space': ' 12.5 % ' }).freeSpace).toEqual({ text: '12.5 %', percent: 12.5 });
    expect(read({ 'free-space': '1048576' }).freeSpace).toEqual({ text: '1048576', amount: 1048576 });
  });

  it('reads the watermarks beside their start lines, and refuses one alone or looser than its line', () => {
    const both = read({
      'free-space': '10GB',
      'free-space-target': '20GB',
      'max-usage': '50GB',
      'max-usage-target': '40GB',
    });
    expect(both.freeSpaceTarget).toEqual({ text: '20GB', amount: 20e9 });
    expect(both.maxUsageTarget).toBe(40e9);
    expect(read({ 'free-inodes': '5%', 'free-inodes-target': '10%' }).freeInodesTarget).toEqual({
      text: '10%',
      percent: 10,
    });
    // Across units the disk decides (the stricter wins there).
    expect(read({ 'free-space': '10GB', 'free-space-target': '5%' }).freeSpaceTarget?.percent).toBe(5);
    expect(() => read({ 'free-space-target': '20GB' })).toThrow(
      /free-space-target.*"20GB".*needs free-space, the line that starts removal/s,
    );
    expect(() => read({ 'free-space': '20GB', 'free-space-target': '10GB' })).toThrow(
      /free-space-target.*"10GB".*is below free-space \(20GB\)/s,
    );
    expect(() => read({ 'free-inodes': '10%', 'free-inodes-target': '5%' })).toThrow(/is below free-inodes/);
    expect(() => read({ 'max-usage': '40GB', 'max-usage-target': '50GB' })).toThrow(
      /max-usage-target.*"50GB".*is above max-usage \(40GB\)/s,
    );
    expect(() => read({ 'max-usage': '40GB', 'max-usage-target': '5%' })).toThrow(
      /max-usage-target.*is a percentage/s,
    );
  });

  it('reads free-inodes as a count or a percentage, and max-usage as a size', () => {
    expect(read({ 'free-inodes': '100000' }).freeInodes).toEqual({ text: '100000', amount: 100000 });
    expect(read({ 'free-inodes': '10%' }).freeInodes).toEqual({ text: '10%', percent: 10 });
    expect(read({ 'max-usage': '50GB' }).maxUsage).toBe(50e9);
  });

  it.each([
    ['free-space', '20 gigs', /is not a size or a percentage; use e.g. 20GB, 15GiB or 15%/],
    ['free-space', '0', /must be more than 0/],
    ['free-space', '100%', /is not a percentage between 0 and 100/],
    ['free-space', '0%', /is not a percentage between 0 and 100/],
    ['free-space', '-5GB', /is not a size/],
    ['free-inodes', '10k', /is not a number of inodes or a percentage/],
    ['free-inodes', '0', /is not a number of inodes/],
    ['free-inodes', '150%', /between 0 and 100/],
    ['max-usage', '80%', /is a percentage; use a size/],
    ['max-usage', 'lots', /is not a size/],
    ['max-usage', '0', /must be more than 0/],
    ['data-path', 'var/lib/containerd', /is not an absolute path/],
  ])('rejects %s %j, naming both', (input, value, why) => {
    expectInputError(() => read({ [input]: value }), input, value, why);
  });

  it('keeps state in the runner tool cache, else the user cache, unless state-dir says where', () => {
    expect(read({}, { RUNNER_TOOL_CACHE: '/opt/hostedtoolcache' }).stateDir).toBe(
      '/opt/hostedtoolcache/safe-docker-prune',
    );
    expect(read({}, { XDG_CACHE_HOME: '/xdg', HOME: '/home/u' }).stateDir).toBe('/xdg/safe-docker-prune');
    expect(read({}, { HOME: '/home/u' }).stateDir).toBe('/home/u/.cache/safe-docker-prune');
    expect(read({ 'state-dir': '/srv/state' }, { RUNNER_TOOL_CACHE: '/x' }).stateDir).toBe('/srv/state');
  });
});
