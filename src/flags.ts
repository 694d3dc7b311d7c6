// The command's flags and environment variables, as pure code: every action input is a flag of the same
// name (`--keep-recent 3`, `--keep-recent=3`) and a variable `SAFE_DOCKER_PRUNE_KEEP_RECENT`; a flag beats
// its variable. The values go through the action's own validation (readInputs), so the messages match.

import { envNameOf, INPUT_SPECS } from './policy/inputs';
import { parseDurationMs } from './policy/inputs';

/** Bad usage: an unknown flag, a flag without its value. Exit code 2, like an invalid value. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

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
}

const COMMAND_FLAGS = ['json', 'help', 'version', 'metrics-file', 'every'] as const;

export function parseCommandLine(argv: string[], env: Record<string, string | undefined>): CommandLine {
  const specs = new Map(INPUT_SPECS.map((spec) => [spec.name, spec]));
  const flags = new Map<string, string[]>();
  const out: CommandLine = { values: new Map(), json: false, help: false, version: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h') {
      out.help = true;
      continue;
    }
    const m = /^--([a-z][a-z-]*)(?:=([\s\S]*))?$/.exec(arg);
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
    if (!specs.has(name) && !(COMMAND_FLAGS as readonly string[]).includes(name)) {
      throw new UsageError(`unknown option --${name}; see --help`);
    }
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
  return out;
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
  // Long flags get their text on the next line, so the column stays narrow.
  const width = 34;
  for (const [flag, text] of rows) {
    if (flag.length < width) lines.push(`  ${flag.padEnd(width)}${text}`);
    else lines.push(`  ${flag}`, `  ${''.padEnd(width)}${text}`);
  }
  lines.push(
    '',
    'Exit codes: 0 done; 1 the run failed (a safety gate, a removal with --fail-on-error, the daemon went',
    'away); 2 bad usage or input; 3 the daemon could not be reached.',
  );
  return lines.join('\n') + '\n';
}
