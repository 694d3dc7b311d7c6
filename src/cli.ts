// The command's front door: flags and environment variables in, one pass of the engine (src/run.ts) or
// one per interval, then a table (or the JSON report), a metrics file and an exit code. It only
// translates: every rule, message and number comes from the shared engine.

import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { messageOf, type DockerApi } from './engine/docker';
import { helpText, parseCommandLine, UsageError, type CommandLine } from './flags';
import { InputError } from './errors';
import { readInputs } from './policy/inputs';
import { renderMetrics } from './report/metrics';
import { renderTable } from './report/table';
import { DaemonUnreachableError, openDaemon, runPass, type Outcome, type RunHooks } from './run';
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
  let inputs: Inputs;
  try {
    cl = parseCommandLine(argv, io.env);
    if (cl.help) {
      io.out(helpText(VERSION));
      return EXIT.ok;
    }
    if (cl.version) {
      io.out(`safe-docker-prune ${VERSION}\n`);
      return EXIT.ok;
    }
    inputs = readInputs((name) => cl.values.get(name) ?? '', io.env);
  } catch (error) {
    if (error instanceof UsageError || error instanceof InputError) {
      io.err(`safe-docker-prune: ${neutralise(error.message)}\n`);
      return EXIT.usage;
    }
    throw error;
  }
  if (inputs.prComment)
    io.err('warning: pr-comment: only the action posts a pull-request comment; ignored\n');
  if (cl.everyMs === undefined) return pass(cl, inputs, io);
  return loop(cl, inputs, io);
}

/** One pass: connect, run, render, write metrics; the exit code. */
async function pass(cl: CommandLine, inputs: Inputs, io: Io): Promise<number> {
  const started = Date.now();
  const inActions = io.env.GITHUB_ACTIONS === 'true';
  const hooks: RunHooks = {
    info: (line) => io.err(`${neutralise(line)}\n`),
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
  const previous = await readFile(file, 'utf8').catch(() => '');
  const facts = outcome?.facts;
  const totals = outcome?.totals;
  const text = renderMetrics(
    {
      daemon: facts?.host ?? inputs.dockerHost ?? 'unix:///var/run/docker.sock',
      mode: inputs.mode,
      ok,
      endedMs: Date.now(),
      durationMs: Date.now() - started,
      removed: {
        images: totals?.removed ?? 0,
        containers: totals?.removedContainers ?? 0,
        networks: totals?.removedNetworks ?? 0,
        volumes: totals?.removedVolumes ?? 0,
      },
      keptImages: totals?.kept ?? 0,
      estimatedBytes: totals?.estimatedBytes ?? 0,
      reclaimedBytes: totals?.reclaimedBytes ?? 0,
      diskFreeBefore: facts?.diskFreeBefore,
      diskFreeAfter: facts?.diskFreeAfter,
      inodesFreeBefore: facts?.inodesFreeBefore,
      inodesFreeAfter: facts?.inodesFreeAfter,
      budgetMet: facts?.plan.budget && (facts.plan.budget.metAfterPrune ?? facts.plan.budget.metAtStart),
      budgetShortfallBytes: facts?.plan.budget?.shortfallBytes,
    },
    previous,
  );
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, text);
  await rename(temp, file);
}

/**
 * Loop mode: one pass per interval, never two at once, each with a fresh inventory. SIGTERM or SIGINT
 * lets the pass in progress finish, then exits 0; while waiting it exits at once. A second loop on the
 * same daemon refuses to start.
 */
async function loop(cl: CommandLine, inputs: Inputs, io: Io): Promise<number> {
  const lock = acquireLoopLock(inputs.dockerHost ?? 'unix:///var/run/docker.sock');
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
    lock.release();
  }
  // A signal ends the loop cleanly; the last pass's failure shows in its output and metrics.
  return stopping ? EXIT.ok : last;
}

/**
 * A lock file per daemon address in the temporary folder, holding the loop's pid. Returns why not when
 * another live loop holds it; a stale one (its process gone) is taken over.
 */
function acquireLoopLock(host: string): { release(): void } | string {
  const key = createHash('sha256').update(host).digest('hex').slice(0, 16);
  const file = join(tmpdir(), `safe-docker-prune-loop-${key}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return {
        release: () => {
          try {
            if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
          } catch {
            // already gone
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST')
        return `cannot create ${file}: ${messageOf(error)}`;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (pid > 0 && pid !== process.pid && alive(pid)) {
        return `another safe-docker-prune loop (pid ${pid}) is already running against ${host} (lock ${file})`;
      }
      unlinkSync(file);
    }
  }
  return `cannot take the loop lock ${file}`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
