// The command's front door: flags and environment variables in, one pass of the engine (src/run.ts) or
// one per interval, then a table (or the JSON report), a metrics file and an exit code. It only
// translates: every rule, message and number comes from the shared engine.

import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { type DockerApi } from './engine/docker';
import { privateDir, readOwnRegularFile, writeFileAtomic } from './engine/files';
import { takeLock, type Lock } from './engine/lock';
import { helpText, parseCommandLine, type CommandLine } from './flags';
import { DaemonUnreachableError, InputError, messageOf, UsageError } from './errors';
import { privateDirOf, readInputs } from './policy/inputs';
import { metricsOf, renderMetrics } from './report/metrics';
import { renderTable } from './report/table';
import { earlyFailureOf, openDaemon, reportEarlyFailure, runPass, type Outcome, type RunHooks } from './run';
import { neutralise, neutraliseJson, neutraliseLines } from './text';
import type { Inputs } from './types';
import { VERSION } from './version';

export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;

export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: Record<string, string | undefined>;
}

const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
};

/** Runs the command; resolves to its exit code. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let cl: CommandLine;
  try {
    cl = parseCommandLine(argv, io.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    // A command line that could not be read has no inputs to report: no report.
    io.err(`safe-docker-prune: ${neutralise(error.message)}\n`);
    return EXIT.usage;
  }
  for (const warning of cl.warnings) io.err(`warning: ${neutralise(warning)}\n`);
  if (cl.help) {
    io.out(helpText(VERSION));
    return EXIT.ok;
  }
  if (cl.version) {
    io.out(`safe-docker-prune ${VERSION}\n`);
    return EXIT.ok;
  }
  let inputs: Inputs;
  try {
    inputs = readInputs((name) => cl.values.get(name) ?? '', io.env);
    await checkReportFolder(inputs.reportFile, io.env);
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    io.err(`safe-docker-prune: ${neutralise(error.message)}\n`);
    await failureReport(cl, io, error);
    return EXIT.usage;
  }
  if (inputs.prComment)
    io.err('warning: pr-comment: only the action posts a pull-request comment; ignored\n');
  if (cl.everyMs === undefined) return pass(cl, inputs, io);
  return loop(cl, inputs, io);
}

/** A report going to the private folder (the default outside Actions) goes there only if it is private. */
async function checkReportFolder(file: string, env: Io['env']): Promise<void> {
  const refused = await reportFolderRefused(file, env);
  if (refused) throw new InputError('report-file', file, refused);
}

/** Why the report may not go to `file`: it is in the private folder, and that is not private. */
async function reportFolderRefused(file: string, env: Io['env']): Promise<string | undefined> {
  if (dirname(file) !== privateDirOf(env)) return undefined;
  const refused = await privateDir(dirname(file));
  return refused && `is in a folder that is not private: ${refused}; choose another path`;
}

/**
 * A run that failed before its pass began (an invalid input, no daemon): the failure report to the report
 * file (where a pass would write it, if the folder is allowed), and with --json to stdout; or says why
 * no file was written. Nothing for later errors (see earlyFailureOf).
 */
async function failureReport(cl: CommandLine, io: Io, error: unknown): Promise<void> {
  const failure = earlyFailureOf(error);
  if (!failure) return;
  const failed = await reportEarlyFailure(
    failure,
    (name) => cl.values.get(name) ?? '',
    io.env,
    async (file) => {
      const refused = await reportFolderRefused(file, io.env);
      return refused && `report-file ${JSON.stringify(file)} ${refused}`;
    },
  );
  if (!failed.file)
    io.err(`safe-docker-prune: ${neutralise(`no JSON report was written: ${failed.notWritten}`)}\n`);
  if (cl.json) io.out(`${neutraliseJson(JSON.stringify(failed.report))}\n`);
}

/** One pass: connect, run, render, write metrics; the exit code. */
async function pass(cl: CommandLine, inputs: Inputs, io: Io): Promise<number> {
  const started = Date.now();
  const inActions = io.env.GITHUB_ACTIONS === 'true';
  const hooks: RunHooks = {
    info: (line) => io.err(`${neutralise(line)}\n`),
    // The table (or the JSON) says every decision once: the plan's log lines would say each twice.
    decision: () => undefined,
    warn: (message) => io.err(`warning: ${neutralise(message)}\n`),
    group: async (title, fn) => {
      // Workflow commands only inside Actions, and never on a JSON stdout.
      if (inActions && !cl.json) io.out(`::group::${neutralise(title)}\n`);
      else io.err(`== ${neutralise(title)}\n`);
      try {
        return await fn();
      } finally {
        if (inActions && !cl.json) io.out('::endgroup::\n');
      }
    },
  };
  let docker: DockerApi | undefined;
  let outcome: Outcome | undefined;
  let code: number = EXIT.ok;
  try {
    docker = openDaemon(inputs);
    outcome = await runPass(inputs, docker, hooks);
    if (outcome.failures.length > 0) {
      for (const failure of outcome.failures) io.err(`safe-docker-prune: failed: ${neutralise(failure)}\n`);
      code = EXIT.failed;
    }
  } catch (error) {
    io.err(`safe-docker-prune: ${neutralise(messageOf(error))}\n`);
    await failureReport(cl, io, error);
    code =
      error instanceof DaemonUnreachableError
        ? EXIT.unreachable
        : error instanceof InputError
          ? EXIT.usage
          : EXIT.failed;
  } finally {
    docker?.close();
  }
  if (outcome) {
    // The runner reads stdout for workflow commands too: the JSON is defused, its values unchanged; the
    // table's fields are neutralised already, each line is again (idempotent) for whatever a field missed.
    if (cl.json) io.out(`${neutraliseJson(JSON.stringify(outcome.report))}\n`);
    else if (outcome.facts) io.out(neutraliseLines(renderTable(outcome.facts, outcome.rows)));
    else io.out(`safe-docker-prune: stopped by a safety gate, nothing was removed\n`);
  }
  if (cl.metricsFile) {
    try {
      await writeMetrics(cl.metricsFile, inputs, outcome, code === EXIT.ok, started);
    } catch (error) {
      io.err(
        `safe-docker-prune: ${neutralise(`could not write --metrics-file ${cl.metricsFile}: ${messageOf(error)}`)}\n`,
      );
      if (code === EXIT.ok) code = EXIT.failed;
    }
  }
  return code;
}

/** Written to a temporary file beside it, then renamed: the collector never reads half a file. */
async function writeMetrics(
  file: string,
  inputs: Inputs,
  outcome: Outcome | undefined,
  ok: boolean,
  started: number,
): Promise<void> {
  // Only our own regular file is read back: a FIFO there would hang the pass, a symlink leak a file.
  const earlier = await readOwnRegularFile(file).catch(() => undefined);
  const previous = earlier?.kind === 'read' ? earlier.text : '';
  const text = renderMetrics(
    metricsOf(outcome, { inputs, ok, endedMs: Date.now(), durationMs: Date.now() - started }),
    previous,
  );
  // Readable by a collector running as another user (node_exporter's textfile collector).
  await writeFileAtomic(file, text, 0o644);
}

/**
 * Loop mode: one pass per interval, never two at once, each with a fresh inventory. SIGTERM or SIGINT
 * lets the pass in progress finish, then exits 0; while waiting it exits at once. A second loop on the
 * same daemon refuses to start.
 */
async function loop(cl: CommandLine, inputs: Inputs, io: Io): Promise<number> {
  const lock = await acquireLoopLock(io.env, inputs.dockerHost ?? 'unix:///var/run/docker.sock');
  if (typeof lock === 'string') {
    io.err(`safe-docker-prune: ${neutralise(lock)}\n`);
    return EXIT.failed;
  }
  let stopping = false;
  let wake: (() => void) | undefined;
  const stop = (signal: string) => {
    if (!stopping) io.err(`safe-docker-prune: ${signal}: finishing the pass in progress, then exiting\n`);
    stopping = true;
    wake?.();
  };
  const onTerm = () => stop('SIGTERM');
  const onInt = () => stop('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  let last: number = EXIT.ok;
  try {
    while (!stopping) {
      const started = Date.now();
      last = await pass(cl, inputs, io);
      if (stopping) break;
      const wait = Math.max(0, started + cl.everyMs! - Date.now());
      io.err(`safe-docker-prune: next pass in ${Math.round(wait / 1000)} s (--every ${cl.everyText})\n`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    await lock.release();
  }
  // A signal ends the loop cleanly; the last pass's failure shows in its output and metrics.
  return stopping ? EXIT.ok : last;
}

/**
 * A lock file per daemon address in the user's private folder, holding the loop's pid. Returns why not
 * when another live loop holds it; a stale one (its process gone) is taken over. In a shared folder any
 * local user could plant a lock (or a FIFO) and stop every loop from starting.
 */
async function acquireLoopLock(env: Io['env'], host: string): Promise<Lock | string> {
  const dir = privateDirOf(env);
  const refused = await privateDir(dir);
  if (refused) return `cannot take the loop lock: ${refused}`;
  const key = createHash('sha256').update(host).digest('hex').slice(0, 16);
  const file = join(dir, `loop-${key}.lock`);
  // A loop runs for as long as it is left to: only a gone owner makes its lock stale, and nobody waits.
  const attempt = await takeLock(file, { waitMs: 0, staleMs: Infinity });
  switch (attempt.kind) {
    case 'taken':
      return attempt.lock;
    case 'refused':
      return `the loop lock ${file} is refused (${attempt.why}); remove it`;
    case 'busy':
      return `another safe-docker-prune loop${attempt.pid ? ` (pid ${attempt.pid})` : ''} is already running against ${host} (lock ${file})`;
    case 'error':
      return `cannot take the loop lock ${file}: ${attempt.message}`;
  }
}
