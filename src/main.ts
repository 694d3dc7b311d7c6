// The thin shell: inputs -> inventory -> plan -> apply -> report. The only file that uses @actions/core.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as core from '@actions/core';
import { applyPlan, type Applied } from './apply';
import { connectDocker, messageOf, type DockerApi } from './docker';
import { readInputs } from './inputs';
import { layersSize, takeInventory } from './inventory';
import { planRemovals } from './plan';
import {
  buildReport,
  imageRows,
  removalAnnotations,
  shortId,
  totalsOf,
  type GateReport,
  type RunFacts,
} from './report';
import { checkGates } from './gates';
import { renderGatesOnly, renderSummary } from './summary';
import type { Inputs, Inventory, Plan } from './types';

/** Concurrent API connections: deletes are latency-bound; measured best around 8 on 2 cores. */
const CONNECTIONS = 8;

/** Keeps user-controlled text on one log line and out of workflow-command syntax. */
export function logSafe(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').replace(/::/g, ':\u200b:');
}

export async function run(): Promise<void> {
  let inputs: Inputs;
  try {
    inputs = readInputs((name) => core.getInput(name, { trimWhitespace: false }), process.env);
  } catch (error) {
    core.setFailed(messageOf(error));
    return;
  }
  const docker = connectDocker(inputs.dockerHost, { timeoutMs: inputs.apiTimeoutMs });
  try {
    const failures = await prune(inputs, docker);
    if (failures.length > 0) core.setFailed(logSafe(failures.join('; ')));
  } catch (error) {
    core.setFailed(logSafe(messageOf(error)));
  } finally {
    docker.close();
  }
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

  try {
    await docker.ping();
  } catch (error) {
    throw new Error(
      `Could not reach a Docker daemon at ${docker.host}: ${messageOf(error)}. Check that the daemon is running, ` +
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
      taken = await takeInventory(docker, CONNECTIONS);
    } catch (error) {
      throw new Error(
        `Could not take an inventory of the Docker daemon at ${docker.host}: ${messageOf(error)}`,
      );
    }
    core.info(
      `${taken.images.length} images, ${taken.containers.length} containers, API ${taken.apiVersion} at ${docker.host}`,
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
    return planned;
  });
  const warnings = plan.unmatchedProtect.map((entry) => `protect entry "${entry}" matched no image`);
  warnings.forEach((w) => core.warning(w));

  let applied: Applied | undefined;
  let layersSizeAfter: number | undefined;
  if (inputs.mode === 'prune') {
    applied = await timed('Remove images', 'applyMs', async () => {
      let lastLog = 0;
      const done = await applyPlan(docker, plan, CONNECTIONS, (n, total) => {
        if (n === total || performance.now() - lastLog > 2000) {
          lastLog = performance.now();
          core.info(`removed ${n}/${total}`);
        }
      });
      for (const r of done.results.filter((r) => r.status === 'error' || r.status === 'conflict')) {
        if (!r.message?.startsWith('not attempted'))
          core.warning(`could not remove ${describe(plan, r.id)}: ${r.message}`);
      }
      return done;
    });
    if (applied.aborted) {
      failures.push(`stopped: ${applied.aborted}; see the summary for what was and was not removed`);
    } else {
      layersSizeAfter = await layersSize(docker).catch(() => undefined);
    }
    const errors = applied.results.filter((r) => r.status === 'error' || r.status === 'conflict').length;
    if (inputs.failOnError && errors > 0 && !applied.aborted) {
      failures.push(`${errors} image(s) could not be removed (fail-on-error is true)`);
    }
    if (inputs.criticalContainers.length > 0 && !applied.aborted) {
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
    results: applied?.results,
    host: docker.host,
    apiVersion: inventory.apiVersion,
    nowMs,
    layersSizeBefore: inventory.layersSize,
    layersSizeAfter,
    timings,
    warnings,
    gates,
    failures,
  };
  await writeResults(inputs, facts, gates, timings);
  const totals = totalsOf(facts, imageRows(plan, applied?.results));
  core.info(
    `${inputs.mode === 'prune' ? 'removed' : 'would remove'} ${totals.removed} image(s); estimated ${totals.estimatedBytes} bytes` +
      (inputs.mode === 'prune'
        ? `, measured ${layersSizeAfter === undefined ? 'unknown' : totals.reclaimedBytes} bytes`
        : ''),
  );
  return failures;
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
): Promise<void> {
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

  if (facts && inputs.mode === 'report' && process.env.GITHUB_EVENT_NAME?.startsWith('pull_request')) {
    for (const note of removalAnnotations(rows)) core.notice(note.message, { title: note.title });
  }
  if (process.env.GITHUB_STEP_SUMMARY) {
    const markdown = facts ? renderSummary(facts, rows) : renderGatesOnly(inputs.mode, gates);
    await core.summary.addRaw(markdown).write();
  }
}
