// One pass of the shared engine: daemon check, safety gates, inventory, plan, removal, measurement and
// the JSON report. Both front doors (the action, src/action.ts, and the command, src/cli.ts) call this
// and only translate: inputs or flags in, outputs, summary, table or exit codes out.

import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { executeBudget, executePlan, type Executed } from './engine/apply';
import { inspectBuilders, listBuildxBuilders } from './engine/buildx';
import { checkDataPath, diskStats, locateDisk, type DiskStats } from './engine/disk';
import { writeFileAtomic } from './engine/files';
import { connectDocker, describeError, messageOf, tlsAdvice, type DockerApi } from './engine/docker';
import { checkGates } from './engine/gates';
import { measureUsage, takeInventory } from './engine/inventory';
import { readState, writeState } from './engine/state';
import { budgetMetAfter, daemonUsage, hasBudget, planWithBudget } from './policy/budget';
import type { FirstSeen } from './policy/age';
import { lastUsedTimes, type DaemonUsage } from './policy/usage';
import {
  buildReport,
  budgetLines,
  engineName,
  imageRows,
  shortId,
  totalsOf,
  type GateReport,
  type ImageRow,
  type RunFacts,
  type Totals,
} from './report/report';
import type {
  BudgetPlan,
  BuildCacheResult,
  ImageInfo,
  ImageStore,
  Inputs,
  Inventory,
  ObjectResult,
  RemovalResult,
  Usage,
} from './types';

/**
 * Requests in flight at once. The inventory's reads gain up to 16 (500 inspects 0.17 s at 8, 0.14 s at
 * 16). The deletes are bound by the daemon, and how many it takes at once depends on its image store
 * (`SDP_DELETE_CONNECTIONS=N npm run bench`, 400 deletes of the 500-image fleet, 2 cores):
 * - classic store (Docker 20.10): 1.84 s at 4, 1.47 s at 8, 1.48 s at 16: 8;
 * - containerd store (Docker 28.5): 7.7 s at 4, 4.7 s at 8, 3.5–3.8 s at 16, 2.9 s at 32: 16, which takes
 *   most of the gain without 32 deletes at once on a host that also runs builds;
 * - Podman 4.3: 10.5 s at 8, 10.0 s at 16 (its service takes them nearly one at a time): 8.
 */
const DELETE_CONNECTIONS: Record<ImageStore, number> = { classic: 8, containerd: 16, podman: 8 };
const READ_CONNECTIONS = 16;

/**
 * The deletes in flight at once for an image store, or SDP_DELETE_CONNECTIONS (1–64), which only the
 * benchmark sets, to measure them.
 */
export function deleteConnections(store: ImageStore, override = process.env.SDP_DELETE_CONNECTIONS): number {
  const n = Number(override);
  return override && Number.isInteger(n) && n >= 1 && n <= 64 ? n : DELETE_CONNECTIONS[store];
}

/** The whole run may take this many times api-timeout (see runTimeLimit). */
const RUN_LIMIT_FACTOR = 10;

/** What a front door does with the pass's progress: log lines, warnings, and named phases. */
export interface RunHooks {
  info(line: string): void;
  warn(message: string): void;
  group<T>(title: string, fn: () => Promise<T>): Promise<T>;
}

/** No Docker daemon answered at the host (the command exits 3 for this). */
export class DaemonUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DaemonUnreachableError';
  }
}

/** What one pass did, for the front doors to render. */
export interface Outcome {
  inputs: Inputs;
  /** Undefined when a safety gate failed before anything was planned. */
  facts?: RunFacts;
  rows: ImageRow[];
  totals?: Totals;
  gates: GateReport;
  /** The JSON report document (also written to inputs.reportFile). */
  report: Record<string, unknown>;
  /** Why the run fails, if it does. */
  failures: string[];
}

/** The daemon the inputs name, with the whole run's time limit. */
export function openDaemon(inputs: Inputs): DockerApi {
  return connectDocker(inputs.dockerHost, { timeoutMs: inputs.apiTimeoutMs, ...runTimeLimit(inputs) });
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

/** Runs one pass; the report file is written before it returns, also when the run fails. */
export async function runPass(inputs: Inputs, docker: DockerApi, hooks: RunHooks): Promise<Outcome> {
  if (inputs.dataPath) await checkDataPath(inputs.dataPath);
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, key: string, fn: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    try {
      return await hooks.group(name, fn);
    } finally {
      timings[key] = Math.round(performance.now() - start);
    }
  };
  const failures: string[] = [];
  const warn = (message: string) => hooks.warn(message);
  const info = (line: string) => hooks.info(line);

  try {
    await docker.ping();
  } catch (error) {
    const message = messageOf(error);
    const tls = tlsAdvice(error, docker.host);
    throw new DaemonUnreachableError(
      /is not a Docker daemon/.test(message)
        ? `${message}. Check that docker-host (or DOCKER_HOST) points at a Docker daemon; nothing was removed.`
        : tls
          ? `Could not reach a Docker daemon at ${docker.host} over TLS (${message}): ${tls}.`
          : `Could not reach a Docker daemon at ${docker.host}: ${message}. Check that the daemon is running, ` +
            'that docker-host (or DOCKER_HOST) points at it, and that this job may use its socket.',
    );
  }

  const gates: GateReport = { before: [] };
  if (inputs.criticalContainers.length > 0) {
    gates.before = await timed('Safety gates', 'gatesMs', () =>
      checkGates(docker, inputs.criticalContainers, inputs.gateTimeoutMs, info),
    );
    const failed = gates.before.filter((g) => !g.ok);
    gates.before.forEach((g) => info(`${g.container}: ${g.ok ? 'ok' : 'FAILED'}, ${g.reason}`));
    if (failed.length > 0) {
      const reason = `safety gate failed, nothing was ${inputs.mode === 'prune' ? 'removed' : 'planned'}: ${failed.map((g) => `${g.container} ${g.reason}`).join(', ')}`;
      return finish(inputs, undefined, gates, timings, [reason]);
    }
  }

  const budgeted = hasBudget(inputs);
  const inventory = await timed('Inventory', 'inventoryMs', async () => {
    let taken: Inventory;
    try {
      taken = await takeInventory(docker, READ_CONNECTIONS, timesNeeded(inputs));
    } catch (error) {
      throw new Error(
        `Could not take an inventory of the Docker daemon at ${docker.host}: ${describeError(error)}`,
      );
    }
    if (inputs.buildxBuilders === 'stale') {
      const listing = await listBuildxBuilders(
        docker.host,
        process.env,
        Math.min(inputs.apiTimeoutMs, 30_000),
      );
      if (listing.unavailable)
        info(`buildx builders: no listing from this host's buildx (${listing.unavailable})`);
      taken.builders = await inspectBuilders(docker, taken.containers, listing, process.env.BUILDX_BUILDER);
      info(
        `buildx builders: ${taken.builders.length} builder container(s)` +
          (listing.unavailable
            ? ''
            : `; buildx knows ${listing.builders.map((b) => b.name).join(', ') || 'none'}`),
      );
    }
    const e = taken.engine;
    info(
      `${taken.images.length} images, ${taken.containers.length} containers; ${engineName(e)} ${e.version} ` +
        `(API ${e.apiVersion}, ${e.imageStore} image store) at ${docker.host}`,
    );
    return taken;
  });

  for (const [phase, ms] of Object.entries(inventory.phases ?? {})) timings[`inventory.${phase}`] = ms;
  const nowMs = Date.now();
  // Usage history: read for the budget's order, recorded by every run (any mode, budget or not).
  const daemonKey = inventory.engine.id || docker.host;
  const history = await readState(inputs.stateDir);
  const historyWarnings =
    history.warning && (budgeted || !history.warning.startsWith('no usage history')) ? [history.warning] : [];
  const places = await locateDisk(docker.host, inventory, inputs.dataPath);
  const measuredPath = places.measured?.path;
  const diskBefore = await diskStats(measuredPath);
  const dataRootBefore = await diskStats(places.dataRoot?.path);
  const lastUsed = lastUsedTimes(
    inventory.images,
    inventory.containers,
    history.state.daemons[daemonKey],
    nowMs,
  );
  const budgetContext = (stepsDone?: number) => ({ disk: diskBefore, lastUsed, stepsDone });
  const policy = { ...inputs, firstSeen: firstSeenOf(history.state.daemons[daemonKey]) };
  let plan = await timed('Plan', 'planMs', async () => {
    const planned = planWithBudget(inventory, policy, nowMs, budgetContext());
    for (const d of planned.images) {
      const what = d.image.repoTags.length > 0 ? d.image.repoTags.join(' ') : shortId(d.image.id);
      info(`${d.action === 'remove' ? 'remove' : `keep (${d.reason})`}: ${what}: ${d.detail}`);
    }
    for (const o of planned.objects.filter((o) => o.reason !== 'not-selected')) {
      info(`${o.action === 'remove' ? 'remove' : `keep (${o.reason})`}: ${o.kind} ${o.name}: ${o.detail}`);
    }
    if (planned.buildCache) info(`build cache: ${planned.buildCache.detail}`);
    if (planned.budget) budgetLines(planned.budget).forEach((line) => info(line));
    return planned;
  });
  const warnings = [
    ...(inventory.warnings ?? []),
    ...historyWarnings,
    ...plan.unmatchedProtect.map((entry) => `protect entry "${entry}" matched nothing`),
    ...(plan.budget?.unmeasurable ?? []),
  ];
  const recorded = await writeState(inputs.stateDir, {
    daemonId: daemonKey,
    images: inventory.images.map((image) => image.id),
    inUse: inventory.containers.map((c) => c.imageId),
    nowMs,
  });
  if (recorded) warnings.push(recorded);
  warnings.forEach((w) => warn(w));

  let stopped: string | undefined;
  let results: RemovalResult[] | undefined;
  let objectResults: ObjectResult[] | undefined;
  let buildCacheResult: BuildCacheResult | undefined;
  let usageAfter: Usage | undefined;
  let diskAfter: DiskStats | undefined;
  let dataRootAfter: DiskStats | undefined;
  if (inputs.mode === 'prune') {
    const connections = deleteConnections(inventory.engine.imageStore);
    let executed: Executed;
    if (plan.budget) {
      const budgetRun = await executeBudget(docker, plan, connections, timed, info, async () => {
        const now = await diskStats(measuredPath);
        return { freeBytes: now?.freeBytes, freeInodes: now?.freeInodes };
      });
      // The filesystem met the budget sooner than the estimate: the rest is kept, budget met.
      if (budgetRun.stepsDone < plan.budget.steps.length) {
        plan = planWithBudget(inventory, policy, nowMs, budgetContext(budgetRun.stepsDone));
      }
      executed = budgetRun;
    } else {
      executed = await executePlan(docker, plan, connections, timed, info);
    }
    ({ results, objectResults, buildCacheResult, stopped } = executed);
    if (buildCacheResult && buildCacheResult.status !== 'removed') {
      warn(`build cache not pruned: ${buildCacheResult.message}`);
    }
    const planned = new Map(plan.images.map((d) => [d.image.id, d.image]));
    for (const r of results.filter((r) => r.status === 'error' || r.status === 'conflict')) {
      if (!r.skipped) {
        warn(`could not remove image ${describe(planned.get(r.id), r.id)}: ${r.message}`);
      }
    }
    for (const r of results) {
      // Races with jobs in flight: say what the daemon did beyond the plan, and what was put back.
      if (r.unplanned?.length) {
        warn(
          `removing image ${describe(planned.get(r.id), r.id)} also removed image(s) the plan kept or never saw: ` +
            `${r.unplanned.map(shortId).join(', ')} (a tag moved to them during the run)`,
        );
      }
      if (r.restored?.length) {
        warn(
          `put back tag(s) ${r.restored.join(', ')} of image ${shortId(r.id)}, which the daemon refused to remove`,
        );
      }
    }
    for (const r of objectResults.filter((r) => r.status === 'error' || r.status === 'conflict')) {
      if (!r.skipped) {
        warn(`could not remove ${r.kind} ${r.id.slice(0, 64)}: ${r.message}`);
      }
    }

    if (executed.stopped) {
      const all = [...results, ...objectResults];
      const count = (test: (r: RemovalResult | ObjectResult) => boolean) => all.filter(test).length;
      const notAttempted = count((r) => !!r.skipped);
      const failed = count((r) => r.status === 'error' && !r.skipped);
      const done = count((r) => r.status !== 'error');
      failures.push(
        `stopped: ${executed.stopped}. Of ${all.length} planned removal(s): ${done} done, ${failed} failed, ` +
          `${notAttempted} not attempted (listed in the summary and the report)`,
      );
    } else {
      const measuring = performance.now();
      usageAfter = await measureUsage(docker, inventory).catch(() => undefined);
      diskAfter = await diskStats(measuredPath);
      dataRootAfter = await diskStats(places.dataRoot?.path);
      timings.measureMs = Math.round(performance.now() - measuring);
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
        checkGates(docker, inputs.criticalContainers, inputs.gateTimeoutMs, info),
      );
      const failed = gates.after.filter((g) => !g.ok);
      if (failed.length > 0) {
        failures.push(`after the prune: ${failed.map((g) => `${g.container} ${g.reason}`).join(', ')}`);
      }
    }
  }

  if (plan.budget) {
    const concluded = concludeBudget(plan.budget, inputs, { stopped, diskAfter, usageAfter });
    concluded.warnings.forEach((w) => warn(w));
    warnings.push(...concluded.warnings);
    failures.push(...concluded.failures);
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
    diskFreeBefore: diskBefore?.freeBytes,
    diskFreeAfter: diskAfter?.freeBytes,
    inodesFreeBefore: diskBefore?.freeInodes,
    inodesFreeAfter: diskAfter?.freeInodes,
    diskPlace: places.measured,
    dataRootDisk: places.dataRoot && {
      path: places.dataRoot.path,
      freeBefore: dataRootBefore?.freeBytes,
      freeAfter: dataRootAfter?.freeBytes,
      inodesFreeBefore: dataRootBefore?.freeInodes,
      inodesFreeAfter: dataRootAfter?.freeInodes,
    },
    timings,
    warnings,
    gates,
    failures,
  };
  const outcome = await finish(inputs, facts, gates, timings, failures);
  const totals = outcome.totals!;
  info(
    `${inputs.mode === 'prune' ? 'removed' : 'would remove'} ${totals.removed} image(s); estimated ${totals.estimatedBytes} bytes` +
      (inputs.mode === 'prune'
        ? `, measured ${usageAfter === undefined ? 'unknown' : totals.reclaimedBytes} bytes`
        : ''),
  );
  return outcome;
}

/**
 * The times the inventory reads beyond its lists: when images arrived (the grace periods, keep-recent's
 * ranking of tagged images, a budget's order) and when stopped containers last ran (the grace period of
 * `containers: stopped`, a budget's order).
 */
function timesNeeded(inputs: Inputs): { tagTimes: boolean; containerTimes: boolean } {
  const budgeted = hasBudget(inputs);
  return {
    tagTimes:
      budgeted ||
      inputs.minAgeMs > 0 ||
      (inputs.runnerImages === 'unused' && inputs.runnerImagesMinAgeMs > 0) ||
      (inputs.images === 'unused' && inputs.keepRecent > 0),
    containerTimes: budgeted || (inputs.minAgeMs > 0 && inputs.containers === 'stopped'),
  };
}

/**
 * The usage history's first sightings of this daemon's images, only where an earlier run left one: on a
 * first run every image would be "first seen now", and the grace period would keep everything.
 */
function firstSeenOf(history: DaemonUsage | undefined): FirstSeen | undefined {
  if (!history) return undefined;
  return new Map(Object.entries(history.images).map(([id, use]) => [id, use.firstSeenMs]));
}

/**
 * The budget's end: by how much it falls short and what holds the space (from the plan), and after a
 * prune what the filesystem and the daemon show now (recorded in `budget.after`).
 */
function concludeBudget(
  budget: BudgetPlan,
  inputs: Inputs,
  end: { stopped?: string; diskAfter?: DiskStats; usageAfter?: Usage },
): { warnings: string[]; failures: string[] } {
  const warnings: string[] = [];
  const short = budget.shortfallBytes > 0;
  if (short) {
    const held = budget.holding.map((h) => `${h.kind} ${h.name} (${h.bytes} bytes, ${h.reason})`).join('; ');
    warnings.push(
      `the budget cannot be met: every allowed removal frees ${budget.needBytes - budget.shortfallBytes} ` +
        `of the ${budget.needBytes} bytes needed, ${budget.shortfallBytes} bytes short` +
        (held ? `; the largest kept: ${held}` : ''),
    );
  }
  if (inputs.mode === 'prune' && !end.stopped) {
    const { diskAfter, usageAfter } = end;
    budget.after = {
      freeBytes: diskAfter?.freeBytes,
      totalBytes: diskAfter?.totalBytes,
      freeInodes: diskAfter?.freeInodes,
      totalInodes: diskAfter?.totalInodes,
      usage: usageAfter
        ? daemonUsage({ usage: usageAfter })
        : budget.before.usage - (budget.steps.at(-1)?.runningTotal ?? 0),
    };
    budget.metAfterPrune = budgetMetAfter(budget, budget.after);
    if (!budget.metAfterPrune && !short) {
      warnings.push('the budget is not met after the prune, as measured now (see the budget section)');
    }
  }
  const failures =
    inputs.failOnError && (short || budget.metAfterPrune === false)
      ? ['the budget is not met (fail-on-error is true)']
      : [];
  return { warnings, failures };
}

/** The classes this run cleans, whose byte totals make up the measured figure. */
function measuredClasses(inputs: Inputs): (keyof Usage)[] {
  return [
    ...(inputs.images !== 'none' || inputs.runnerImages === 'unused' ? (['layers'] as const) : []),
    ...(inputs.containers !== 'none' || inputs.buildxBuilders === 'stale' ? (['containers'] as const) : []),
    ...(inputs.volumes !== 'none' || inputs.buildxBuilders === 'stale' ? (['volumes'] as const) : []),
    ...(inputs.buildCache !== 'none' ? (['buildCache'] as const) : []),
  ];
}

function describe(image: ImageInfo | undefined, id: string): string {
  return image && image.repoTags.length > 0 ? `${image.repoTags.join(' ')} (${shortId(id)})` : shortId(id);
}

/** Rows, totals and the JSON report of the pass, written to the report file. */
async function finish(
  inputs: Inputs,
  facts: RunFacts | undefined,
  gates: GateReport,
  timings: Record<string, number>,
  failures: string[],
): Promise<Outcome> {
  const rows = facts ? imageRows(facts.plan, facts.results) : [];
  const totals = facts ? totalsOf(facts, rows) : undefined;
  timings.totalMs = Math.round(performance.now());
  const report: Record<string, unknown> = facts
    ? buildReport(facts, rows)
    : { version: 1, mode: inputs.mode, gates, images: [], failures, timings };
  await mkdir(dirname(inputs.reportFile), { recursive: true });
  // Through a new file renamed over: a symlink planted at the report's name is replaced, not followed.
  await writeFileAtomic(inputs.reportFile, JSON.stringify(report, null, 2), 0o644);
  return { inputs, facts, rows, totals, gates, report, failures };
}
