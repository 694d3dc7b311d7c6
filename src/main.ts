// The thin shell: inputs -> inventory -> plan -> apply -> report. The only file that uses @actions/core.

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as core from '@actions/core';
import { applyPlan } from './apply';
import { connectDocker, messageOf, type DockerApi } from './docker';
import { readInputs } from './inputs';
import { layersSize, takeInventory } from './inventory';
import { planRemovals } from './plan';
import { buildReport, imageRows, removalAnnotations, shortId, totalsOf, type RunFacts } from './report';
import { renderSummary } from './summary';
import type { Inputs, Inventory, RemovalResult } from './types';

/** Concurrent API connections: deletes are latency-bound; measured best around 8 on 2 cores. */
const CONNECTIONS = 8;
const API_TIMEOUT_MS = 300_000;

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
  const docker = connectDocker(inputs.dockerHost, { timeoutMs: API_TIMEOUT_MS });
  try {
    await prune(inputs, docker);
  } catch (error) {
    core.setFailed(messageOf(error));
  } finally {
    docker.close();
  }
}

async function prune(inputs: Inputs, docker: DockerApi): Promise<void> {
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, key: string, fn: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    try {
      return await core.group(name, fn);
    } finally {
      timings[key] = Math.round(performance.now() - start);
    }
  };

  const inventory = await timed('Inventory', 'inventoryMs', async () => {
    let taken: Inventory;
    try {
      taken = await takeInventory(docker, CONNECTIONS);
    } catch (error) {
      throw new Error(
        `Could not take an inventory of the Docker daemon at ${docker.host}: ${messageOf(error)}. ` +
          'Check that the daemon is running and that docker-host (or DOCKER_HOST) points at it.',
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
  warnings.forEach((w) => core.warning(logSafe(w)));

  let results: RemovalResult[] | undefined;
  let layersSizeAfter: number | undefined;
  if (inputs.mode === 'prune') {
    results = await timed('Remove images', 'applyMs', async () => {
      let lastLog = 0;
      const done = await applyPlan(docker, plan, CONNECTIONS, (n, total) => {
        if (n === total || performance.now() - lastLog > 2000) {
          lastLog = performance.now();
          core.info(`removed ${n}/${total}`);
        }
      });
      for (const r of done.filter((r) => r.status === 'error' || r.status === 'conflict')) {
        core.warning(logSafe(`could not remove ${shortId(r.id)}: ${r.message ?? r.status}`));
      }
      return done;
    });
    layersSizeAfter = await layersSize(docker);
  }

  const facts: RunFacts = {
    plan,
    results,
    host: docker.host,
    apiVersion: inventory.apiVersion,
    nowMs,
    layersSizeBefore: inventory.layersSize,
    layersSizeAfter,
    timings,
    warnings,
  };
  const rows = imageRows(plan, results);
  const totals = totalsOf(facts, rows);

  await mkdir(dirname(inputs.reportFile), { recursive: true });
  timings.totalMs = Math.round(performance.now());
  await writeFile(inputs.reportFile, JSON.stringify(buildReport(facts, rows), null, 2));

  core.setOutput('removed-count', totals.removed);
  core.setOutput('kept-count', totals.kept);
  core.setOutput('reclaimed-bytes', totals.reclaimedBytes);
  core.setOutput('estimated-bytes', totals.estimatedBytes);
  core.setOutput('report-file', inputs.reportFile);

  if (inputs.mode === 'report' && process.env.GITHUB_EVENT_NAME?.startsWith('pull_request')) {
    for (const note of removalAnnotations(rows)) core.notice(note.message, { title: note.title });
  }
  if (process.env.GITHUB_STEP_SUMMARY) {
    await core.summary.addRaw(renderSummary(facts, rows)).write();
  }
  core.info(
    `${inputs.mode === 'prune' ? 'removed' : 'would remove'} ${totals.removed} image(s); estimated ${totals.estimatedBytes} bytes` +
      (inputs.mode === 'prune' ? `, measured ${totals.reclaimedBytes} bytes` : ''),
  );
}
