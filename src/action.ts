// The action's front door: inputs from the workflow, one pass of the engine (src/run.ts), then outputs,
// annotations and the job summary. The only file that uses @actions/core.

import type * as ActionsCore from '@actions/core';
import { pullRequestOf, upsertComment } from './github';
import { readInputs } from './policy/inputs';
import { commentMarker, renderComment } from './report/comment';
import { removalAnnotations } from './report/annotations';
import { renderFailure, renderGatesOnly, renderSummary } from './report/summary';
import { earlyFailureOf, openDaemon, reportEarlyFailure, runPass, type Outcome } from './run';
import { neutralise } from './text';
import type { Inputs } from './types';
import { messageOf } from './errors';

const WARNING_ANNOTATIONS = 9;

type Core = typeof ActionsCore;

/** An input as @actions/core's `getInput(name, { trimWhitespace: false })` reads it: from the environment. */
function inputOf(name: string): string {
  return process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] || '';
}

export async function run(): Promise<void> {
  let inputs: Inputs;
  try {
    inputs = readInputs(inputOf, process.env);
  } catch (error) {
    const core = await import('@actions/core');
    await writeFailure(core, error);
    core.setFailed(neutralise(messageOf(error)));
    return;
  }
  // @actions/core, with the HTTP client it loads (most of what the action would parse at start), is a
  // chunk of its own, loaded once the first request to the daemon is on its way: the run's work starts
  // sooner. Lines written before it has loaded are written, in order, as soon as it has.
  let loaded: Core | undefined;
  const ready = new Promise<Core>((resolve, reject) => {
    setImmediate(() => import('@actions/core').then(resolve, reject));
  }).then((core) => (loaded = core));
  const withCore = (write: (core: Core) => void) => {
    if (loaded) write(loaded);
    else void ready.then(write);
  };
  // Masked before anything can print it; only when the comment will use it (the runner masks its own).
  const token = inputs.prComment ? inputs.githubToken : undefined;
  if (token) withCore((core) => core.setSecret(token));
  // GitHub keeps 10 warning annotations per step: the first 9 are annotations, the rest go to the log
  // under one more annotation that counts them.
  let warned = 0;
  const hooks = {
    info: (line: string) => withCore((core) => core.info(neutralise(line))),
    warn: (message: string) => {
      warned++;
      const count = warned;
      withCore((core) => {
        if (count <= WARNING_ANNOTATIONS) core.warning(neutralise(message));
        else core.info(neutralise(`warning: ${message}`));
      });
    },
    group: async <T>(title: string, fn: () => Promise<T>) => (await ready).group(neutralise(title), fn),
  };
  let docker;
  let outcome: Outcome | undefined;
  try {
    docker = openDaemon(inputs);
    outcome = await runPass(inputs, docker, hooks);
    const core = await ready;
    if (warned > WARNING_ANNOTATIONS) {
      core.warning(`${warned - WARNING_ANNOTATIONS} more warning(s) in the log above and in the job summary`);
    }
    await writeOutputs(core, outcome);
    if (inputs.prComment) await postComment(core, outcome, hooks.warn);
    if (outcome.failures.length > 0) core.setFailed(neutralise(outcome.failures.join('; ')));
  } catch (error) {
    const core = await ready;
    if (!outcome) await writeFailure(core, error);
    core.setFailed(neutralise(messageOf(error)));
  } finally {
    docker?.close();
  }
}

/**
 * A run that failed before its pass began (an invalid input, no daemon): the JSON report, its output and
 * the job summary, before the step is failed. Nothing for later errors (see earlyFailureOf).
 */
async function writeFailure(core: Core, error: unknown): Promise<void> {
  const failure = earlyFailureOf(error);
  if (!failure) return;
  const failed = await reportEarlyFailure(failure, inputOf, process.env);
  if (failed.file) core.setOutput('report-file', failed.file);
  else core.info(neutralise(`no JSON report was written: ${failed.notWritten}`));
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  try {
    await core.summary.addRaw(renderFailure(failed.report, failed)).write();
  } catch (summaryError) {
    core.info(neutralise(`could not write the job summary: ${messageOf(summaryError)}`));
  }
}

/** Outputs, annotations and the job summary; with no facts (a gate failed first) only the gates. */
async function writeOutputs(core: Core, { inputs, facts, rows, totals, gates }: Outcome): Promise<void> {
  core.setOutput('removed-count', totals?.removed ?? 0);
  core.setOutput('kept-count', totals?.kept ?? 0);
  core.setOutput('reclaimed-bytes', totals?.reclaimedBytes ?? 0);
  core.setOutput('estimated-bytes', totals?.estimatedBytes ?? 0);
  core.setOutput('estimated-bytes-low', totals?.estimatedBytesLow ?? 0);
  core.setOutput('estimated-bytes-high', totals?.estimatedBytesHigh ?? 0);
  core.setOutput('report-file', inputs.reportFile);
  core.setOutput('removed-containers', totals?.removedContainers ?? 0);
  core.setOutput('removed-networks', totals?.removedNetworks ?? 0);
  core.setOutput('removed-volumes', totals?.removedVolumes ?? 0);
  core.setOutput('build-cache-bytes', totals?.buildCacheBytes ?? 0);
  // Never a wrong number: "unknown" when the daemon's disk is not this machine's.
  core.setOutput('disk-free-before', facts?.diskFreeBefore ?? 'unknown');
  core.setOutput('disk-free-after', facts?.diskFreeAfter ?? 'unknown');

  if (facts && inputs.mode === 'report' && process.env.GITHUB_EVENT_NAME?.startsWith('pull_request')) {
    for (const note of removalAnnotations(rows)) {
      core.notice(neutralise(note.message), { title: neutralise(note.title) });
    }
  }
  if (process.env.GITHUB_STEP_SUMMARY) {
    const markdown = facts ? renderSummary(facts, rows) : renderGatesOnly(inputs.mode, gates);
    await core.summary.addRaw(markdown).write();
  }
}

/**
 * The sticky pull-request comment: on pull_request and pull_request_target events only, one per workflow
 * job, edited in place. A token that may not write (forks, Dependabot, read-only permissions) is a
 * warning: the comment is information, the step goes on.
 */
async function postComment(
  core: Core,
  { inputs, facts, rows }: Outcome,
  warn: (message: string) => void,
): Promise<void> {
  const target = await pullRequestOf(process.env);
  if ('none' in target) {
    core.info(neutralise(`pr-comment: no comment, ${target.none}`));
    return;
  }
  if (!facts) {
    core.info('pr-comment: no comment, a safety gate stopped the run before a plan was made');
    return;
  }
  if (!inputs.githubToken) {
    warn('pr-comment: no github-token, so no pull-request comment');
    return;
  }
  const marker = commentMarker(process.env.GITHUB_WORKFLOW ?? '', process.env.GITHUB_JOB ?? '');
  const result = await upsertComment(target, inputs.githubToken, marker, renderComment(facts, rows, marker));
  switch (result.status) {
    case 'created':
    case 'updated':
      core.info(`pr-comment: ${result.status} comment ${result.id} on pull request #${target.number}`);
      break;
    case 'forbidden':
      warn(
        `pr-comment: GitHub refused the pull-request comment, ${result.message}. Grant the job ` +
          '`permissions: pull-requests: write` (pull requests from forks and Dependabot get a read-only ' +
          'token whatever the workflow asks; the job summary has the same report)',
      );
      break;
    default:
      warn(`pr-comment: could not post the pull-request comment: ${result.message}`);
  }
}
