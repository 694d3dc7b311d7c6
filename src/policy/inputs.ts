// Reads and validates the action inputs. Pure: the caller passes the input getter and the environment.
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError } from '../errors';
import { parseProtectEntry } from './protect';
import type {
  AgeLimit,
  BuildCacheScope,
  BuildxBuilderScope,
  ContainerScope,
  ImageScope,
  KeepRecentBy,
  Inputs,
  Mode,
  NetworkScope,
  Target,
  RunnerImageScope,
  VolumeScope,
} from '../types';

/**
 * Every input, in one place: the action's inputs (action.yml declares the same names and defaults; a unit
 * test keeps them equal) and the command's flags (`--keep-recent`) and environment variables
 * (`SAFE_DOCKER_PRUNE_KEEP_RECENT`).
 */
export interface InputSpec {
  name: string;
  default: string;
  /** What the value looks like, for --help. */
  values: string;
  help: string;
  /** Takes a list (one per line or comma-separated); as a flag it may be repeated. */
  list?: boolean;
}

export const INPUT_SPECS: readonly InputSpec[] = [
  {
    name: 'mode',
    default: 'report',
    values: 'report|prune',
    help: 'report decides and tells, changing nothing; prune removes what the report lists',
  },
  {
    name: 'images',
    default: 'dangling',
    values: 'none|dangling|unused',
    help: 'which images are candidates (unused: like docker image prune -a)',
  },
  {
    name: 'older-than',
    default: '',
    values: 'DURATION|TIMESTAMP',
    help: 'only what was created (or last used) before this: 7d, 36h, 2026-01-31',
  },
  {
    name: 'min-age',
    default: '1h',
    values: 'DURATION|0',
    help: 'grace period: what arrived on the host (pulled, loaded, built, tagged) or was last used this recently stays; 0: off',
  },
  {
    name: 'runner-images-min-age',
    default: '6h',
    values: 'DURATION|0',
    help: 'grace period of runner-built action images (built at job setup, run steps later); 0: off',
  },
  {
    name: 'protect',
    default: '',
    values: 'NAME[:TAG]|NAME@DIGEST|ID|label=K[=V]',
    help: 'never removed; repeatable or comma-separated',
    list: true,
  },
  {
    name: 'keep-recent',
    default: '2',
    values: 'N',
    help: 'per repository, the N newest images stay (rollback)',
  },
  {
    name: 'keep-recent-by',
    default: 'created',
    values: 'created|used',
    help: 'keep-recent ranks by creation, or by last use by a container (what was deployed)',
  },
  {
    name: 'docker-host',
    default: '',
    values: 'unix://PATH|tcp://HOST:PORT|ssh://USER@HOST',
    help: 'the daemon; default DOCKER_HOST, else the local socket',
  },
  {
    name: 'report-file',
    default: '',
    values: 'PATH',
    help: 'where the JSON report goes; default $RUNNER_TEMP/safe-docker-prune-report.json, else report.json in $XDG_RUNTIME_DIR/safe-docker-prune or ~/.cache/safe-docker-prune',
  },
  {
    name: 'critical-containers',
    default: '',
    values: 'NAME|ID',
    help: 'must be running (and healthy) before and after, or nothing is removed; repeatable',
    list: true,
  },
  {
    name: 'gate-timeout',
    default: '60s',
    values: 'DURATION',
    help: 'how long a critical container whose health is starting is waited for',
  },
  { name: 'api-timeout', default: '2m', values: 'DURATION', help: 'limit for every Docker API call' },
  {
    name: 'time-limit',
    default: '',
    values: 'DURATION',
    help: 'hard bound on the whole run (default 10 × api-timeout); past it nothing more is removed, the report is written and the run fails',
  },
  {
    name: 'fail-on-error',
    default: 'false',
    values: 'true|false',
    help: 'an object that could not be removed fails the run',
  },
  {
    name: 'containers',
    default: 'none',
    values: 'none|stopped',
    help: 'remove exited, dead and created containers',
  },
  {
    name: 'networks',
    default: 'none',
    values: 'none|unused',
    help: 'remove user-defined networks no container uses',
  },
  { name: 'build-cache', default: 'none', values: 'none|unused', help: 'prune build cache not in use' },
  {
    name: 'build-cache-keep',
    default: '',
    values: 'SIZE',
    help: 'keep this much of the most recently used build cache: 5GB, 512MiB',
  },
  {
    name: 'volumes',
    default: 'none',
    values: 'none|anonymous',
    help: 'remove anonymous unused local volumes (named volumes never)',
  },
  {
    name: 'free-space',
    default: '',
    values: 'SIZE|PERCENT%',
    help: 'budget: free space wanted on the filesystem holding the images (see data-path): 20GB, 15GiB, 15%; least recently used goes first, stopping once met',
  },
  {
    name: 'free-inodes',
    default: '',
    values: 'N|PERCENT%',
    help: 'budget: free inodes wanted on the filesystem holding the images (see data-path): 100000, 10%',
  },
  {
    name: 'max-usage',
    default: '',
    values: 'SIZE',
    help: 'budget: cap on what the daemon uses for images, containers and build cache (works for remote daemons)',
  },
  {
    name: 'free-space-target',
    default: '',
    values: 'SIZE|PERCENT%',
    help: 'watermark: once a budget line is crossed, remove until this much is free (default: free-space itself)',
  },
  {
    name: 'free-inodes-target',
    default: '',
    values: 'N|PERCENT%',
    help: 'watermark: once a budget line is crossed, remove until this many inodes are free (default: free-inodes)',
  },
  {
    name: 'max-usage-target',
    default: '',
    values: 'SIZE',
    help: 'watermark: once a budget line is crossed, remove until the daemon uses no more (default: max-usage)',
  },
  {
    name: 'data-path',
    default: '',
    values: 'PATH',
    help: "the path whose filesystem free-space, free-inodes and the disk figures measure; default the containerd store's snapshots or the data root",
  },
  {
    name: 'state-dir',
    default: '',
    values: 'PATH',
    help: 'usage history between runs; default $RUNNER_TOOL_CACHE/safe-docker-prune, else ~/.cache/safe-docker-prune',
  },
  {
    name: 'lock-file',
    default: '',
    values: 'PATH',
    help: "one prune of a daemon at a time: the lock prunes share; default per daemon in the user's private folder",
  },
  {
    name: 'lock-wait',
    default: '2m',
    values: 'DURATION',
    help: 'how long a prune waits for another one holding the lock before it skips, reporting only (0: no wait)',
  },
  {
    name: 'runner-images',
    default: 'unused',
    values: 'unused|none',
    help: 'images the Actions runner built for container actions (<6 hex>:<32 hex>) are candidates',
  },
  {
    name: 'buildx-builders',
    default: 'none',
    values: 'none|stale',
    help: 'remove idle builder containers (and state volumes) of buildx docker-container builders older than older-than (24h)',
  },
  {
    name: 'pr-comment',
    default: 'false',
    values: 'true|false',
    help: 'the action posts one sticky pull-request comment (the command ignores it)',
  },
  {
    // action.yml's default is the expression `${{ github.token }}`; nothing for the command.
    name: 'github-token',
    default: '',
    values: 'TOKEN',
    help: 'token for the pull-request comment (the action only)',
  },
];

/** Inputs whose action.yml default is a workflow expression the command cannot have, and the expression. */
export const EXPRESSION_DEFAULTS: Readonly<Record<string, string>> = {
  'github-token': '${{ github.token }}',
};

/** `keep-recent` → `SAFE_DOCKER_PRUNE_KEEP_RECENT`. */
export function envNameOf(input: string): string {
  return `SAFE_DOCKER_PRUNE_${input.toUpperCase().replace(/-/g, '_')}`;
}

const MODES: readonly Mode[] = ['report', 'prune'];
const KEEP_RECENT_BY: readonly KeepRecentBy[] = ['created', 'used'];
const SCOPES: readonly ImageScope[] = ['none', 'dangling', 'unused'];
const CONTAINER_SCOPES: readonly ContainerScope[] = ['none', 'stopped'];
const NETWORK_SCOPES: readonly NetworkScope[] = ['none', 'unused'];
const CACHE_SCOPES: readonly BuildCacheScope[] = ['none', 'unused'];
const VOLUME_SCOPES: readonly VolumeScope[] = ['none', 'anonymous'];
const RUNNER_SCOPES: readonly RunnerImageScope[] = ['unused', 'none'];
const BUILDER_SCOPES: readonly BuildxBuilderScope[] = ['none', 'stale'];

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** A size like `5GB` (decimal units), `512MiB` (binary units) or plain bytes, in bytes. */
export function parseSize(input: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value);
  const unit = match ? SIZE_UNITS[(match[2] || 'b').toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new InputError(input, value, 'is not a size; use e.g. 5GB, 512MiB or a number of bytes');
  }
  return Math.round(Number(match[1]) * unit);
}

/**
 * A budget target: a percentage of the filesystem (`15%`), or an amount: a size for bytes (`20GB`),
 * a whole number for inodes.
 */
export function parseTarget(input: string, value: string, unit: 'bytes' | 'inodes'): Target {
  const percent = /^(\d+(?:\.\d+)?)\s*%$/.exec(value);
  if (percent) {
    const p = Number(percent[1]);
    if (!(p > 0 && p < 100)) throw new InputError(input, value, 'is not a percentage between 0 and 100');
    return { text: value, percent: p };
  }
  if (unit === 'inodes') {
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) <= 0) {
      throw new InputError(input, value, 'is not a number of inodes or a percentage; use e.g. 100000 or 10%');
    }
    return { text: value, amount: Number(value) };
  }
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value);
  if (!match || SIZE_UNITS[(match[2] || 'b').toLowerCase()] === undefined) {
    throw new InputError(input, value, 'is not a size or a percentage; use e.g. 20GB, 15GiB or 15%');
  }
  const bytes = parseSize(input, value);
  if (bytes <= 0) throw new InputError(input, value, 'must be more than 0');
  return { text: value, amount: bytes };
}

/** `state-dir`: the runner's tool cache survives across jobs on self-hosted runners; else the user's cache. */
export function defaultStateDir(env: Record<string, string | undefined>): string {
  if (env.RUNNER_TOOL_CACHE) return path.join(env.RUNNER_TOOL_CACHE, 'safe-docker-prune');
  return userCacheOf(env);
}

const userCacheOf = (env: Record<string, string | undefined>) =>
  path.join(env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache'), 'safe-docker-prune');

/**
 * `report-file`: the job's own temporary folder in Actions; elsewhere the user's private folder, never a
 * fixed name in /tmp, where any local user could plant a symlink or a file of theirs first.
 */
export function defaultReportFile(env: Record<string, string | undefined>): string {
  if (env.RUNNER_TEMP) return path.join(env.RUNNER_TEMP, 'safe-docker-prune-report.json');
  return path.join(privateDirOf(env), 'report.json');
}

/** The command's private folder (report, loop lock): the login session's runtime folder, else the user's cache. */
export function privateDirOf(env: Record<string, string | undefined>): string {
  return env.XDG_RUNTIME_DIR ? path.join(env.XDG_RUNTIME_DIR, 'safe-docker-prune') : userCacheOf(env);
}

function oneOf<T extends string>(input: string, value: string, allowed: readonly T[], fallback: T): T {
  if (value === '') return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new InputError(input, value, `is not one of: ${allowed.join(', ')}`);
}

// Go's time.ParseDuration units, plus days and weeks which Go lacks but people write.
const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign
  μs: 1e-3, // U+03BC Greek mu; Go accepts both
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
const DURATION = /^([-+]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h|d|w))+)$/;
const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w)/g;

/**
 * Milliseconds of a Go-style duration with `d` and `w` units (`90m`, `1h30m`, `1.5h`, `1w2d`, `-2h`),
 * or undefined if the text is not one. A unit is required: bare numbers are unix timestamps.
 */
export function parseDurationMs(text: string): number | undefined {
  const m = DURATION.exec(text);
  if (!m) return undefined;
  let ms = 0;
  for (const [, n, unit] of m[2].matchAll(DURATION_PART)) ms += Number(n) * UNIT_MS[unit];
  return m[1] === '-' ? 0 - ms : ms; // 0 - ms: `-0s` is 0, not -0
}

// Date, optional time and zone. Without a zone the time is UTC: the daemon's notion of local time
// is unknowable here, and hosted runners run in UTC anyway.
const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?([Zz]|([+-])(\d{2}):(\d{2}))?)?$/;

/** Epoch ms of a timestamp, undefined if the text has no timestamp shape, NaN if it has one but is no real moment. */
function parseTimestampMs(text: string): number | undefined {
  if (/^\d+(?:\.\d+)?$/.test(text)) return Number(text) * 1000; // unix seconds, as Docker's `until` filter
  const m = TIMESTAMP.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s, , , , oh, om] = m.slice(1).map((v) => Number(v ?? 0));
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const maxDay = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1];
  if (!maxDay || d < 1 || d > maxDay || h > 23 || mi > 59 || s > 59 || oh > 23 || om > 59) return NaN;
  const offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d); // Date.UTC would map years 0-99 to 1900-1999
  date.setUTCHours(h, mi, s, 0);
  return date.getTime() + (m[7] ? Number(`0.${m[7]}`) * 1000 : 0) - offsetMin * 60_000;
}

/** Parses `older-than`: a duration back from now, or a timestamp. */
export function parseAgeLimit(input: string, value: string): AgeLimit {
  const text = value.trim();
  const durationMs = parseDurationMs(text);
  if (durationMs !== undefined) {
    if (durationMs < 0)
      throw new InputError(input, value, 'is negative; use a duration such as 7d or a timestamp');
    if (!Number.isFinite(durationMs)) throw new InputError(input, value, 'is too large');
    return { text, durationMs };
  }
  const atMs = parseTimestampMs(text);
  if (atMs === undefined) {
    throw new InputError(input, value, 'is not a duration or timestamp; use 7d, 36h or 2026-01-31');
  }
  if (!Number.isFinite(atMs)) throw new InputError(input, value, 'is not a valid date and time');
  return { text, atMs };
}

/** Splits on newlines and commas; blank entries and lines starting with `#` are ignored. */
/** A list input: one entry per line or comma-separated; blank entries and `#` comment lines are skipped. */
export function parseList(value: string): string[] {
  return value
    .split(/\r?\n/)
    .filter((line) => !line.trim().startsWith('#'))
    .flatMap((line) => line.split(','))
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

function parseProtect(value: string) {
  return parseList(value).map(parseProtectEntry);
}

/** A grace period (`1h`, `90m`, `2d`; `0` turns it off), in milliseconds. */
function parseMinAge(input: string, value: string, fallback: string): number {
  const text = value || fallback;
  const ms = /^[+]?0+$/.test(text) ? 0 : parseDurationMs(text);
  if (ms === undefined || ms < 0 || !Number.isFinite(ms)) {
    throw new InputError(
      input,
      value,
      'is not a duration of 0 or more; use e.g. 1h, 90m, 2d, or 0 to turn it off',
    );
  }
  return ms;
}

/** A positive duration input (`30s`, `2m`, `1h`), in milliseconds. */
function parseTimeout(input: string, value: string, fallback: string): number {
  const ms = parseDurationMs(value || fallback);
  if (ms === undefined || ms <= 0) {
    throw new InputError(input, value, 'is not a positive duration; use e.g. 30s, 2m or 1h');
  }
  return ms;
}

const CONTAINER_REF = /^(?:[a-zA-Z0-9][a-zA-Z0-9_.-]*|[0-9a-f]{12,64})$/;

function parseContainers(input: string, value: string): string[] {
  const names = parseList(value).map((n) => n.replace(/^\//, ''));
  const bad = names.find((n) => !CONTAINER_REF.test(n));
  if (bad !== undefined) throw new InputError(input, bad, 'is not a container name or ID');
  return names;
}

function parseBoolean(input: string, value: string, fallback: boolean): boolean {
  if (value === '') return fallback;
  // The YAML 1.2 core schema's booleans, as @actions/core's getBooleanInput accepts them.
  if (['true', 'True', 'TRUE'].includes(value)) return true;
  if (['false', 'False', 'FALSE'].includes(value)) return false;
  throw new InputError(input, value, 'is not a boolean; use true or false');
}

function parseMaxUsage(input: string, value: string): number {
  if (/%\s*$/.test(value)) {
    throw new InputError(input, value, 'is a percentage; use a size such as 50GB (of what the daemon uses)');
  }
  const bytes = parseSize(input, value);
  if (bytes <= 0) throw new InputError(input, value, 'must be more than 0');
  return bytes;
}

/**
 * A watermark's target needs its start line and must not be looser than it (more free space or inodes,
 * less usage); across units (10GB and 5%) that is only known on the disk, where the stricter one wins.
 */
function checkWatermark(
  name: 'free-space' | 'free-inodes' | 'max-usage',
  start: Target | number | undefined,
  target: Target | number | undefined,
  raw: (name: string) => string,
): void {
  if (target === undefined) return;
  const input = `${name}-target`;
  if (start === undefined) {
    throw new InputError(input, raw(input), `needs ${name}, the line that starts removal; set both`);
  }
  if (typeof start === 'number' && typeof target === 'number') {
    if (target > start) {
      throw new InputError(
        input,
        raw(input),
        `is above max-usage (${raw(name)}); removal would stop before it began`,
      );
    }
    return;
  }
  const [a, b] = [start as Target, target as Target];
  const looser =
    (a.amount !== undefined && b.amount !== undefined && b.amount < a.amount) ||
    (a.percent !== undefined && b.percent !== undefined && b.percent < a.percent);
  if (looser) {
    throw new InputError(
      input,
      raw(input),
      `is below ${name} (${raw(name)}); removal would stop before it began`,
    );
  }
}

/** `data-path` must be absolute (that it exists is checked as the run starts, by checkDataPath). */
function parseDataPath(value: string): string {
  if (!path.isAbsolute(value)) throw new InputError('data-path', value, 'is not an absolute path');
  return path.normalize(value);
}

function parseKeepRecent(value: string): number {
  if (value === '') return 2;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new InputError('keep-recent', value, 'is not a whole number of 0 or more');
  }
  return n;
}

const HOST_FORMS =
  'use unix:///path/to/docker.sock, tcp://HOST:PORT, npipe:////./pipe/NAME or ssh://USER@HOST';

/** Checks the forms dockerode understands, so a typo fails here and not as a confusing connection error. */
function parseDockerHost(input: string, value: string): string {
  if (/^unix:\/\/\/\S*[^/\s]/.test(value) || /^npipe:\/\/\S+$/.test(value)) return value;
  if (/^ssh:\/\/[^@/\s]+@[^@/\s]+\/?$/.test(value)) return value;
  const tcp = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d+))?\/?$/.exec(value);
  if (tcp) {
    // Without a port dockerode silently connects to port 80.
    if (tcp[2] === undefined)
      throw new InputError(input, value, 'has no port; add it, e.g. :2375 (or :2376 for TLS)');
    const port = Number(tcp[2]);
    if (port >= 1 && port <= 65535) return value;
    throw new InputError(input, value, 'has a port outside 1-65535');
  }
  if (value.startsWith('/')) throw new InputError(input, value, `is a bare path; use unix://${value}`);
  throw new InputError(input, value, `is not a Docker host; ${HOST_FORMS}`);
}

// Checks across inputs go here; each throws an InputError naming the input at fault.
const CROSS_CHECKS: ReadonlyArray<(inputs: Inputs, raw: (name: string) => string, nowMs: number) => void> = [
  (inputs, raw, nowMs) => {
    // "Created before a moment still to come" is every image: almost surely a typo, and a costly one.
    if (inputs.olderThan?.atMs !== undefined && inputs.olderThan.atMs > nowMs) {
      throw new InputError(
        'older-than',
        raw('older-than'),
        'is in the future, so every image would be a candidate; use a past date or a duration such as 7d',
      );
    }
  },
  (inputs, raw) => {
    checkWatermark('free-space', inputs.freeSpace, inputs.freeSpaceTarget, raw);
    checkWatermark('free-inodes', inputs.freeInodes, inputs.freeInodesTarget, raw);
    checkWatermark('max-usage', inputs.maxUsage, inputs.maxUsageTarget, raw);
  },
  (inputs, raw) => {
    if (inputs.buildCacheKeep !== undefined && inputs.buildCache === 'none') {
      throw new InputError(
        'build-cache-keep',
        raw('build-cache-keep'),
        'needs build-cache: unused (build-cache is none, so no build cache is pruned)',
      );
    }
  },
];

export function readInputs(
  get: (name: string) => string,
  env: Record<string, string | undefined>,
  nowMs = Date.now(),
): Inputs {
  const read = (name: string) => get(name).trim();
  const olderThan = read('older-than');
  const host = read('docker-host');
  const envHost = env.DOCKER_HOST?.trim();
  const inputs: Inputs = {
    mode: oneOf('mode', read('mode'), MODES, 'report'),
    images: oneOf('images', read('images'), SCOPES, 'dangling'),
    olderThan: olderThan ? parseAgeLimit('older-than', olderThan) : undefined,
    protect: parseProtect(get('protect')),
    keepRecent: parseKeepRecent(read('keep-recent')),
    keepRecentBy: oneOf('keep-recent-by', read('keep-recent-by'), KEEP_RECENT_BY, 'created'),
    minAgeMs: parseMinAge('min-age', read('min-age'), '1h'),
    runnerImagesMinAgeMs: parseMinAge('runner-images-min-age', read('runner-images-min-age'), '6h'),
    dockerHost: host
      ? parseDockerHost('docker-host', host)
      : envHost
        ? parseDockerHost('DOCKER_HOST', envHost)
        : undefined,
    reportFile: read('report-file') || defaultReportFile(env),
    criticalContainers: parseContainers('critical-containers', get('critical-containers')),
    gateTimeoutMs: parseTimeout('gate-timeout', read('gate-timeout'), '60s'),
    apiTimeoutMs: parseTimeout('api-timeout', read('api-timeout'), '2m'),
    timeLimitMs: read('time-limit') ? parseTimeout('time-limit', read('time-limit'), '') : undefined,
    failOnError: parseBoolean('fail-on-error', read('fail-on-error'), false),
    containers: oneOf('containers', read('containers'), CONTAINER_SCOPES, 'none'),
    networks: oneOf('networks', read('networks'), NETWORK_SCOPES, 'none'),
    buildCache: oneOf('build-cache', read('build-cache'), CACHE_SCOPES, 'none'),
    buildCacheKeep: read('build-cache-keep')
      ? parseSize('build-cache-keep', read('build-cache-keep'))
      : undefined,
    volumes: oneOf('volumes', read('volumes'), VOLUME_SCOPES, 'none'),
    freeSpace: read('free-space') ? parseTarget('free-space', read('free-space'), 'bytes') : undefined,
    freeInodes: read('free-inodes') ? parseTarget('free-inodes', read('free-inodes'), 'inodes') : undefined,
    maxUsage: read('max-usage') ? parseMaxUsage('max-usage', read('max-usage')) : undefined,
    freeSpaceTarget: read('free-space-target')
      ? parseTarget('free-space-target', read('free-space-target'), 'bytes')
      : undefined,
    freeInodesTarget: read('free-inodes-target')
      ? parseTarget('free-inodes-target', read('free-inodes-target'), 'inodes')
      : undefined,
    maxUsageTarget: read('max-usage-target')
      ? parseMaxUsage('max-usage-target', read('max-usage-target'))
      : undefined,
    stateDir: read('state-dir') || defaultStateDir(env),
    lockFile: read('lock-file') || undefined,
    lockWaitMs: parseMinAge('lock-wait', read('lock-wait'), '2m'),
    dataPath: read('data-path') ? parseDataPath(read('data-path')) : undefined,
    runnerImages: oneOf('runner-images', read('runner-images'), RUNNER_SCOPES, 'unused'),
    buildxBuilders: oneOf('buildx-builders', read('buildx-builders'), BUILDER_SCOPES, 'none'),
    prComment: parseBoolean('pr-comment', read('pr-comment'), false),
    githubToken: read('github-token'),
  };
  for (const check of CROSS_CHECKS) check(inputs, read, nowMs);
  return inputs;
}
