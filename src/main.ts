// The thin shell: inputs -> inventory -> plan -> apply -> report. The only file that uses @actions/core.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as core from '@actions/core';
import { executePlan } from './apply';
import { diskFree } from './disk';
import { connectDocker, messageOf, type DockerApi } from './docker';
import { readInputs } from './inputs';
import { measureUsage, takeInventory } from './inventory';
import { planRemovals } from './plan';
import {
  buildReport,
  engineName,
  imageRows,
  removalAnnotations,
  shortId,
  totalsOf,
  type GateReport,
  type RunFacts,
  type Totals,
} from './report';
import { checkGates } from './gates';
import { renderGatesOnly, renderSummary } from './summary';
import type { BuildCacheResult, Inputs, Inventory, ObjectResult, Plan, RemovalResult, Usage } from './types';

/**
 * Requests in flight at once. Deletes are bound by the daemon, which gains little past 8 on 2 cores;
 * the inventory's reads gain up to 16 (measured with 500 images: 400 deletes 0.72 s at 8, 0.79 s at 16;
 * 500 inspects 0.17 s at 8, 0.14 s at 16).
 */
const CONNECTIONS = 8;
const READ_CONNECTIONS = 16;
const WARNING_ANNOTATIONS = 9;
/** The whole run may take this many times api-timeout (see runTimeLimit). */
const RUN_LIMIT_FACTOR = 10;

/** Keeps user-controlled text on one log line and out of workflow-command syntax. */
export function logSafe(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').replace(/::/g, ':\u200b:');
}

export async function run(): Promise<void> {
  let inputs: Inputs;
  try {
    inputs = readInputs((name) => core.getInput(name, { trimWhitespace: false }), process.env);
  } catch (error) {
    core.setFailed(logSafe(messageOf(error)));
    return;
  }
  const docker = connectDocker(inputs.dockerHost, {
    timeoutMs: inputs.apiTimeoutMs,
    ...runTimeLimit(inputs),
  });
  try {
    const failures = await prune(inputs, docker);
    if (failures.length > 0) core.setFailed(logSafe(failures.join('; ')));
  } catch (error) {
    core.setFailed(logSafe(messageOf(error)));
  } finally {
    docker.close();
  }
}

/**
 * The whole run's time limit: RUN_LIMIT_FACTOR × api-timeout (20 minutes by default), plus gate-timeout
 * for each of the two gate checks when there are critical containers (their wait is not the daemon's).
 * A daemon that hangs, or answers each call just in time, cannot keep the step running for longer.
 */
export function runTimeLimit(inputs: Inputs): { runTimeoutMs: number; runLimitRule: string } {
  const gates = inputs.criticalContainers.length > 0;
  return {
    runTimeoutMs: RUN_LIMIT_FACTOR * inputs.apiTimeoutMs + (gates ? 2 * inputs.gateTimeoutMs : 0),
    runLimitRule: `${RUN_LIMIT_FACTOR} × api-timeout${gates ? ' + 2 × gate-timeout' : ''}`,
  };
}

/** Runs the pipeline; returns the reasons the step fails (outputs and summary are written first). */
async function prune(inputs: Inputs, docker: DockerApi): Promise<string[]> {
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, key: string, fn: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    try {
      return await core.group(name, fn);
    } finally {
      timings[key] = Math.round(performance.now() - start);
    }
  };
  const failures: string[] = [];
  // GitHub keeps 10 warning annotations per step: the first 9 are annotations, the rest go to the log
  // under one more annotation that counts them.
  let warned = 0;
  const warn = (message: string) => {
    warned++;
    if (warned <= WARNING_ANNOTATIONS) core.warning(logSafe(message));
    else core.info(logSafe(`warning: ${message}`));
  };

  try {
    await docker.ping();
  } catch (error) {
    const message = messageOf(error);
    throw new Error(
      /is not a Docker daemon/.test(message)
        ? `${message}. Check that docker-host (or DOCKER_HOST) points at a Docker daemon; nothing was removed.`
        : `Could not reach a Docker daemon at ${docker.host}: ${message}. Check that the daemon is running, ` +
            'that docker-host (or DOCKER_HOST) points at it, and that this job may use its socket.',
    );
  }

  const gates: GateReport = { before: [] };
  if (inputs.criticalContainers.length > 0) {
    gates.before = await timed('Safety gates', 'gatesMs', () =>
      checkGates(docker, inputs.criticalContainers, inputs.gateTimeoutMs, (l) => core.info(logSafe(l))),
    );
    const failed = gates.before.filter((g) => !g.ok);
    gates.before.forEach((g) => core.info(logSafe(`${g.container}: ${g.ok ? 'ok' : 'FAILED'}, ${g.reason}`)));
    if (failed.length > 0) {
      const reason = `safety gate failed, nothing was ${inputs.mode === 'prune' ? 'removed' : 'planned'}: ${failed.map((g) => `${g.container} ${g.reason}`).join(', ')}`;
      await writeResults(inputs, undefined, gates, timings);
      return [reason];
    }
  }

  const inventory = await timed('Inventory', 'inventoryMs', async () => {
    let taken: Inventory;
    try {
      taken = await takeInventory(docker, READ_CONNECTIONS);
    } catch (error) {
      throw new Error(
        `Could not take an inventory of the Docker daemon at ${docker.host}: ${messageOf(error)}`,
      );
    }
    const e = taken.engine;
    core.info(
      `${taken.images.length} images, ${taken.containers.length} containers; ${engineName(e)} ${e.version} ` +
        `(API ${e.apiVersion}, ${e.imageStore} image store) at ${docker.host}`,
    );
    return taken;
  });

  const nowMs = Date.now();
  const plan = await timed('Plan', 'planMs', async () => {
    const planned = planRemovals(inventory, inputs, nowMs);
    for (const d of planned.images) {
      const what = d.image.repoTags.length > 0 ? d.image.repoTags.join(' ') : shortId(d.image.id);
      core.info(logSafe(`${d.action === 'remove' ? 'remove' : `keep (${d.reason})`}: ${what}: ${d.detail}`));
    }
    for (const o of planned.objects.filter((o) => o.reason !== 'not-selected')) {
      core.info(
        logSafe(
          `${o.action === 'remove' ? 'remove' : `keep (${o.reason})`}: ${o.kind} ${o.name}: ${o.detail}`,
        ),
      );
    }
    if (planned.buildCache) core.info(logSafe(`build cache: ${planned.buildCache.detail}`));
    return planned;
  });
  const warnings = plan.unmatchedProtect.map((entry) => `protect entry "${entry}" matched nothing`);
  warnings.forEach((w) => warn(w));

  const diskFreeBefore = await diskFree(docker.host, inventory.rootDir);
  let results: RemovalResult[] | undefined;
  let objectResults: ObjectResult[] | undefined;
  let buildCacheResult: BuildCacheResult | undefined;
  let usageAfter: Usage | undefined;
  let diskFreeAfter: number | undefined;
  if (inputs.mode === 'prune') {
    const executed = await executePlan(docker, plan, CONNECTIONS, timed, (line) => core.info(logSafe(line)));
    ({ results, objectResults, buildCacheResult } = executed);
    if (buildCacheResult && buildCacheResult.status !== 'removed') {
      warn(`build cache not pruned: ${buildCacheResult.message}`);
    }
    for (const r of results.filter((r) => r.status === 'error' || r.status === 'conflict')) {
      if (!r.message?.startsWith('not attempted')) {
        warn(`could not remove image ${describe(plan, r.id)}: ${r.message}`);
      }
    }
    for (const r of objectResults.filter((r) => r.status === 'error' || r.status === 'conflict')) {
      if (!r.message?.startsWith('not attempted')) {
        warn(`could not remove ${r.kind} ${r.id.slice(0, 64)}: ${r.message}`);
      }
    }

    if (executed.stopped) {
      const all = [...results, ...objectResults];
      const count = (test: (r: RemovalResult | ObjectResult) => boolean) => all.filter(test).length;
      const notAttempted = count((r) => !!r.message?.startsWith('not attempted'));
      const failed = count((r) => r.status === 'error' && !r.message?.startsWith('not attempted'));
      const done = count((r) => r.status !== 'error');
      failures.push(
        `stopped: ${executed.stopped}. Of ${all.length} planned removal(s): ${done} done, ${failed} failed, ` +
          `${notAttempted} not attempted (listed in the summary and the report)`,
      );
    } else {
      usageAfter = await measureUsage(docker, inventory).catch(() => undefined);
      diskFreeAfter = await diskFree(docker.host, inventory.rootDir);
    }
    const errors = [...results, ...objectResults].filter(
      (r) => r.status === 'error' || r.status === 'conflict',
    );
    if (
      inputs.failOnError &&
      !executed.stopped &&
      (errors.length > 0 || buildCacheResult?.status === 'error')
    ) {
      failures.push(`${errors.length} object(s) could not be removed (fail-on-error is true)`);
    }
    if (inputs.criticalContainers.length > 0 && !executed.stopped) {
      gates.after = await timed('Safety gates after the prune', 'gatesAfterMs', () =>
        checkGates(docker, inputs.criticalContainers, inputs.gateTimeoutMs, (l) => core.info(logSafe(l))),
      );
      const failed = gates.after.filter((g) => !g.ok);
      if (failed.length > 0) {
        failures.push(`after the prune: ${failed.map((g) => `${g.container} ${g.reason}`).join(', ')}`);
      }
    }
  }

  const facts: RunFacts = {
    plan,
    results,
    objectResults,
    buildCacheResult,
    host: docker.host,
    engine: inventory.engine,
    nowMs,
    usageBefore: inventory.usage,
    usageAfter,
    measured: measuredClasses(inputs),
    diskFreeBefore,
    diskFreeAfter,
    timings,
    warnings,
    gates,
    failures,
  };
  if (warned > WARNING_ANNOTATIONS) {
    core.warning(`${warned - WARNING_ANNOTATIONS} more warning(s) in the log above and in the job summary`);
  }
  const totals = (await writeResults(inputs, facts, gates, timings))!;
  core.info(
    `${inputs.mode === 'prune' ? 'removed' : 'would remove'} ${totals.removed} image(s); estimated ${totals.estimatedBytes} bytes` +
      (inputs.mode === 'prune'
        ? `, measured ${usageAfter === undefined ? 'unknown' : totals.reclaimedBytes} bytes`
        : ''),
  );
  return failures;
}

/** The classes this run cleans, whose byte totals make up the measured figure. */
function measuredClasses(inputs: Inputs): (keyof Usage)[] {
  return [
    ...(inputs.images !== 'none' ? (['layers'] as const) : []),
    ...(inputs.containers !== 'none' ? (['containers'] as const) : []),
    ...(inputs.volumes !== 'none' ? (['volumes'] as const) : []),
    ...(inputs.buildCache !== 'none' ? (['buildCache'] as const) : []),
  ];
}

function describe(plan: Plan, id: string): string {
  const image = plan.images.find((d) => d.image.id === id)?.image;
  return image && image.repoTags.length > 0 ? `${image.repoTags.join(' ')} (${shortId(id)})` : shortId(id);
}

/** Report file, outputs, annotations and summary; with no facts (a gate failed first) only the gates. */
async function writeResults(
  inputs: Inputs,
  facts: RunFacts | undefined,
  gates: GateReport,
  timings: Record<string, number>,
): Promise<Totals | undefined> {
  const rows = facts ? imageRows(facts.plan, facts.results) : [];
  const totals = facts ? totalsOf(facts, rows) : undefined;
  await mkdir(dirname(inputs.reportFile), { recursive: true });
  timings.totalMs = Math.round(performance.now());
  const report = facts
    ? buildReport(facts, rows)
    : { version: 1, mode: inputs.mode, gates, images: [], timings };
  await writeFile(inputs.reportFile, JSON.stringify(report, null, 2));

  core.setOutput('removed-count', totals?.removed ?? 0);
  core.setOutput('kept-count', totals?.kept ?? 0);
  core.setOutput('reclaimed-bytes', totals?.reclaimedBytes ?? 0);
  core.setOutput('estimated-bytes', totals?.estimatedBytes ?? 0);
  core.setOutput('report-file', inputs.reportFile);
  core.setOutput('removed-containers', totals?.removedContainers ?? 0);
  core.setOutput('removed-networks', totals?.removedNetworks ?? 0);
  core.setOutput('removed-volumes', totals?.removedVolumes ?? 0);
  core.setOutput('build-cache-bytes', totals?.buildCacheBytes ?? 0);
  // Never a wrong number: "unknown" when the daemon's disk is not this machine's.
  core.setOutput('disk-free-before', facts?.diskFreeBefore ?? 'unknown');
  core.setOutput('disk-free-after', facts?.diskFreeAfter ?? 'unknown');

  if (facts && inputs.mode === 'report' && process.env.GITHUB_EVENT_NAME?.startsWith('pull_request')) {
    for (const note of removalAnnotations(rows)) core.notice(note.message, { title: note.title });
  }
  if (process.env.GITHUB_STEP_SUMMARY) {
    const markdown = facts ? renderSummary(facts, rows) : renderGatesOnly(inputs.mode, gates);
    await core.summary.addRaw(markdown).write();
  }
  return totals;
}
