// The action's front door: inputs from the workflow, one pass of the engine (src/run.ts), then outputs,
// annotations and the job summary. The only file that uses @actions/core.

import * as core from '@actions/core';
import { messageOf } from './engine/docker';
import { readInputs } from './policy/inputs';
import { removalAnnotations } from './report/report';
import { renderGatesOnly, renderSummary } from './report/summary';
import { openDaemon, runPass, type Outcome } from './run';
import type { Inputs } from './types';

const WARNING_ANNOTATIONS = 9;

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
  // GitHub keeps 10 warning annotations per step: the first 9 are annotations, the rest go to the log
  // under one more annotation that counts them.
  let warned = 0;
  const hooks = {
    info: (line: string) => core.info(logSafe(line)),
    warn: (message: string) => {
      warned++;
      if (warned <= WARNING_ANNOTATIONS) core.warning(logSafe(message));
      else core.info(logSafe(`warning: ${message}`));
    },
    group: <T>(title: string, fn: () => Promise<T>) => core.group(title, fn),
  };
  let docker;
  try {
    docker = openDaemon(inputs);
    const outcome = await runPass(inputs, docker, hooks);
    if (warned > WARNING_ANNOTATIONS) {
      core.warning(`${warned - WARNING_ANNOTATIONS} more warning(s) in the log above and in the job summary`);
    }
    await writeOutputs(outcome);
    if (outcome.failures.length > 0) core.setFailed(logSafe(outcome.failures.join('; ')));
  } catch (error) {
    core.setFailed(logSafe(messageOf(error)));
  } finally {
    docker?.close();
  }
}

/** Outputs, annotations and the job summary; with no facts (a gate failed first) only the gates. */
async function writeOutputs({ inputs, facts, rows, totals, gates }: Outcome): Promise<void> {
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
}
