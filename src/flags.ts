// The command's flags and environment variables, as pure code: every action input is a flag of the same
// name (`--keep-recent 3`, `--keep-recent=3`) and a variable `SAFE_DOCKER_PRUNE_KEEP_RECENT`; a flag beats
// its variable. The values go through the action's own validation (readInputs), so the messages match.

import { envNameOf, INPUT_SPECS } from './policy/inputs';
import { parseDurationMs } from './policy/inputs';
import { UsageError } from './errors';

export interface CommandLine {
  /** The raw value of each input given by flag or variable ('' when neither). */
  values: Map<string, string>;
  json: boolean;
  help: boolean;
  version: boolean;
  metricsFile?: string;
  /** Loop mode: one pass per interval, in milliseconds. */
  everyMs?: number;
  everyText?: string;
  /** Variables named SAFE_DOCKER_PRUNE_* that nothing reads (a typo, or a setting from another version). */
  warnings: string[];
}

const COMMAND_FLAGS = ['json', 'help', 'version', 'metrics-file', 'every'] as const;
const ENV_PREFIX = 'SAFE_DOCKER_PRUNE_';

/**
 * The known name closest to a mistyped one, for "did you mean": at most two edits away (or one for
 * names of four letters or fewer), else the only name it begins or ends.
 */
export function closestName(typed: string, known: readonly string[]): string | undefined {
  const limit = typed.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const name of known) {
    const d = editDistance(typed, name, limit);
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  if (best) return best;
  const partial = known.filter(
    (name) => typed.length >= 3 && (name.startsWith(typed) || typed.startsWith(name)),
  );
  return partial.length === 1 ? partial[0] : undefined;
}

/** Levenshtein distance with adjacent swaps, or limit + 1 once it exceeds limit. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        row[j] = Math.min(row[j], before[j - 2] + 1);
    }
    [before, previous] = [previous, row];
  }
  return Math.min(previous[b.length], limit + 1);
}

/** "unknown option --keep-recnt; did you mean --keep-recent? (see --help)". */
function unknownOption(shown: string, name: string, known: readonly string[]): UsageError {
  const near = name.length >= 3 ? closestName(name, known) : undefined;
  return new UsageError(`unknown option ${shown}${near ? `; did you mean --${near}?` : ''} (see --help)`);
}

export function parseCommandLine(argv: string[], env: Record<string, string | undefined>): CommandLine {
  const specs = new Map(INPUT_SPECS.map((spec) => [spec.name, spec]));
  const flags = new Map<string, string[]>();
  const known = [...specs.keys(), ...COMMAND_FLAGS];
  const out: CommandLine = { values: new Map(), json: false, help: false, version: false, warnings: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h') {
      out.help = true;
      continue;
    }
    const m = /^--([a-z][a-z-]*)(?:=([\s\S]*))?$/.exec(arg);
    const loose = /^--?([A-Za-z][A-Za-z_-]*)(?:=[\s\S]*)?$/.exec(arg);
    if (!m && loose) {
      // -keep-recent, --Keep_Recent: an option written another way, or a typo.
      throw unknownOption(
        JSON.stringify(arg.split('=')[0]),
        loose[1].toLowerCase().replace(/_/g, '-'),
        known,
      );
    }
    if (!m) {
      throw new UsageError(
        arg.startsWith('-')
          ? `unknown option ${JSON.stringify(arg)}; see --help`
          : `unexpected argument ${JSON.stringify(arg)}: every setting is a flag (--name value); see --help`,
      );
    }
    const [, name, inline] = m;
    if (name === 'json' || name === 'help' || name === 'version') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      out[name] = true;
      continue;
    }
    if (!known.includes(name)) throw unknownOption(`--${name}`, name, known);
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length || /^--[a-z]/.test(argv[i + 1]))
        throw new UsageError(`--${name} needs a value`);
      value = argv[++i];
    }
    const seen = flags.get(name) ?? [];
    if (seen.length > 0 && !specs.get(name)?.list) {
      throw new UsageError(
        `--${name} was given twice (${JSON.stringify(seen[0])} and ${JSON.stringify(value)})`,
      );
    }
    flags.set(name, [...seen, value]);
  }
  for (const spec of INPUT_SPECS) {
    const given = flags.get(spec.name);
    const fromEnv = env[envNameOf(spec.name)];
    // A list input repeated as a flag is one entry per flag; readInputs splits on lines and commas.
    out.values.set(spec.name, given ? given.join('\n') : (fromEnv ?? ''));
  }
  const metrics = flags.get('metrics-file')?.[0] ?? env.SAFE_DOCKER_PRUNE_METRICS_FILE;
  if (metrics !== undefined) {
    if (metrics.trim() === '') throw new UsageError('--metrics-file needs a path');
    out.metricsFile = metrics;
  }
  const every = flags.get('every')?.[0] ?? env.SAFE_DOCKER_PRUNE_EVERY;
  if (every !== undefined && every.trim() !== '') {
    const ms = parseDurationMs(every.trim());
    if (ms === undefined || ms < 1000) {
      throw new UsageError(
        `--every: ${JSON.stringify(every)} is not a duration of at least 1s; use e.g. 15m, 1h or 6h`,
      );
    }
    out.everyMs = ms;
    out.everyText = every.trim();
  }
  out.json ||= env.SAFE_DOCKER_PRUNE_JSON === 'true' || env.SAFE_DOCKER_PRUNE_JSON === '1';
  out.warnings = unknownVariables(env, known);
  return out;
}

/** Variables with the command's prefix that name no option: each one warned, with the closest name. */
function unknownVariables(env: Record<string, string | undefined>, known: readonly string[]): string[] {
  const names = known.filter((name) => name !== 'help' && name !== 'version');
  const variables = new Set(names.map(envNameOf));
  return Object.keys(env)
    .filter((key) => key.startsWith(ENV_PREFIX) && !variables.has(key))
    .sort()
    .map((key) => {
      const near = closestName(key.slice(ENV_PREFIX.length).toLowerCase().replace(/_/g, '-'), names);
      return `${key} is not a setting of this command and is ignored${near ? `; did you mean ${envNameOf(near)}?` : ''}`;
    });
}

/** The widest line --help prints. */
export const HELP_COLUMNS = 100;

/** Words into lines of at most `columns` characters (a longer word gets a line of its own). */
function wrap(text: string, columns: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > columns) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}

/** `--help`: every flag with its values, default and variable. */
export function helpText(version: string): string {
  const lines = [
    `safe-docker-prune ${version}: report or remove unused Docker images, containers, networks, build cache`,
    'and anonymous volumes without touching what is in use, protected or needed for rollback.',
    '',
    'Usage: safe-docker-prune [--mode report|prune] [--images unused] [--protect PATTERN]... [options]',
    '',
    'Options (each also an environment variable SAFE_DOCKER_PRUNE_<NAME>; a flag beats its variable):',
  ];
  const rows: [string, string][] = [
    ...INPUT_SPECS.map((spec): [string, string] => [
      `--${spec.name} ${spec.values}`,
      `${spec.help}${spec.default ? ` (default ${spec.default})` : ''}`,
    ]),
    ['--json', 'print only the JSON report on stdout (logs go to stderr)'],
    ['--metrics-file PATH', 'write Prometheus text metrics there (node_exporter textfile collector)'],
    ['--every DURATION', 'loop: one pass per interval (15m, 6h); SIGTERM finishes the pass and exits'],
    ['--help, -h', 'this help'],
    ['--version', 'the version'],
  ];
  // Long flags get their text on the next line, so the column stays narrow; text wraps within COLUMNS.
  const width = 34;
  const indent = ' '.repeat(width + 2);
  for (const [flag, text] of rows) {
    const wrapped = wrap(text, HELP_COLUMNS - indent.length);
    if (flag.length < width) lines.push(`  ${flag.padEnd(width)}${wrapped[0]}`);
    else lines.push(`  ${flag}`, indent + wrapped[0]);
    lines.push(...wrapped.slice(1).map((line) => indent + line));
  }
  lines.push(
    '',
    'Examples:',
    '  # a report of the local daemon: what would go and why; removes nothing',
    '  safe-docker-prune',
    "  # remove unused images, but never postgres's, and keep each repository's 3 newest",
    "  safe-docker-prune --mode prune --images unused --protect 'postgres:*' --keep-recent 3",
    '  # keep 20 GB free on the data root, checked every hour (systemd, cron or a container)',
    '  safe-docker-prune --mode prune --free-space 20GB --every 1h',
    '',
    'Exit codes: 0 done; 1 the run failed (a safety gate, a removal with --fail-on-error, the daemon went',
    'away); 2 bad usage or input; 3 the daemon could not be reached.',
  );
  return lines.join('\n') + '\n';
}
