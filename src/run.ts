// One pass of the shared engine: daemon check, safety gates, inventory, plan, removal, measurement and
// the JSON report. Both front doors (the action, src/action.ts, and the command, src/cli.ts) call this
// and only translate: inputs or flags in, outputs, summary, table or exit codes out.

import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { executeBudget, executePlan, type Executed, type Phase } from './engine/apply';
import { inspectBuilders, listBuildxBuilders } from './engine/buildx';
import {
  checkDataPath,
  diskStats,
  isLocalDataRoot,
  locateDisk,
  type DiskPlaces,
  type DiskStats,
} from './engine/disk';
import { privateDir, writeFileAtomic } from './engine/files';
import { takeLock, type Lock } from './engine/lock';
import { connectDocker, describeError, tlsAdvice, type DockerApi } from './engine/docker';
import { checkGates } from './engine/gates';
import { DaemonUnreachableError, InputError, InventoryError, messageOf } from './errors';
import { measureUsage, takeInventory } from './engine/inventory';
import { readState } from './engine/state';
import { unaccountedOf, usedUnder, type NotMeasured, type Unaccounted } from './engine/unaccounted';
import { recordPrune, recordStart, trendOf, type Recorded } from './history';
import type { Trend } from './policy/trend';
import { defaultReportFile, privateDirOf } from './policy/inputs';
import { budgetMetAfter, daemonUsage, hasBudget, planWithBudget, type BudgetPolicy } from './policy/budget';
import { durationText, type FirstSeen } from './policy/age';
import { containerUseTimes, lastUsedTimes, type DaemonUsage } from './policy/usage';
import { budgetLines } from './report/budget-lines';
import type { GateReport, RunFacts } from './report/facts';
import { totalsOf, type Totals } from './report/figures';
import { engineName, formatBytes, shortId } from './report/format';
import {
  buildFailureReport,
  buildReport,
  givenInputs,
  statusOf,
  type EarlyFailure,
  type FailureReport,
} from './report/json-report';
import { imageRows, type ImageRow } from './report/rows';
import type {
  BudgetPlan,
  BuilderInfo,
  GateResult,
  ImageInfo,
  ImageStore,
  Inputs,
  Inventory,
  ObjectResult,
  Plan,
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
  /**
   * One line per decision of the plan (and the budget's lines); `info` when absent. The command leaves
   * them out: the table it prints has one line per decision already.
   */
  decision?(line: string): void;
  warn(message: string): void;
  group<T>(title: string, fn: () => Promise<T>): Promise<T>;
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
 * The whole run's time limit: `time-limit` when given; else RUN_LIMIT_FACTOR × api-timeout (20 minutes by default), plus gate-timeout
 * for each of the two gate checks when there are critical containers (their wait is not the daemon's).
 * A daemon that hangs, or answers each call just in time, cannot keep the step running for longer.
 */
export function runTimeLimit(inputs: Inputs): { runTimeoutMs: number; runLimitRule: string } {
  // A job hook's own bound (`time-limit`), gates and all.
  if (inputs.timeLimitMs !== undefined)
    return { runTimeoutMs: inputs.timeLimitMs, runLimitRule: 'time-limit' };
  const gates = inputs.criticalContainers.length > 0;
  return {
    runTimeoutMs: RUN_LIMIT_FACTOR * inputs.apiTimeoutMs + (gates ? 2 * inputs.gateTimeoutMs : 0),
    runLimitRule: `${RUN_LIMIT_FACTOR} × api-timeout${gates ? ' + 2 × gate-timeout' : ''}`,
  };
}

/**
 * Runs one pass; the report file is written before it returns, also when the run fails. The stages, in
 * order: reach the daemon, gates before, inventory, history, plan, record usage, prune (then measure and
 * gates after), verdict, facts and the closing line.
 */
export async function runPass(inputs: Inputs, docker: DockerApi, hooks: RunHooks): Promise<Outcome> {
  if (inputs.dataPath) await checkDataPath(inputs.dataPath);
  const clean = inputs.mode === 'prune' ? await holdCleanLock(inputs, docker.host, hooks) : { warnings: [] };
  try {
    return await onePass(clean.skip ? { ...inputs, mode: 'report' } : inputs, docker, hooks, clean.warnings);
  } finally {
    await clean.lock?.release();
  }
}

/** The pass itself, under the clean-up lock when it prunes; `lockWarnings` say why it may not. */
async function onePass(
  inputs: Inputs,
  docker: DockerApi,
  hooks: RunHooks,
  lockWarnings: string[],
): Promise<Outcome> {
  const pass = startPass(inputs, docker, hooks);
  await reachDaemon(docker);
  const gates: GateReport = { before: await gatesBefore(pass) };
  const early = verdict({ inputs, gates });
  if (early.failures.length > 0) return finish(inputs, undefined, gates, pass.timings, early.failures);

  const inventory = await readInventory(pass);
  const nowMs = Date.now();
  const history = await readHistory(pass, inventory);
  const disk = await diskBefore(pass, inventory);
  const planning = planningOf(inputs, inventory, history, disk, nowMs);
  let plan = await planPass(pass, planning);
  const recorded = await recordUsage(pass, inventory, history, disk, nowMs);
  const warnings = [...lockWarnings, ...passWarnings(inventory, history, plan), ...recorded.warnings];
  warnings.forEach((w) => hooks.warn(w));

  let executed: Executed | undefined;
  let after: Measurement = {};
  let rows: ImageRow[] | undefined;
  if (inputs.mode === 'prune') {
    ({ executed, plan } = await prune(pass, planning, plan, disk));
    if (!executed.stopped) {
      after = await measure(pass, inventory, disk, plan.budget);
      const gatesAfterPrune = await gatesAfter(pass);
      if (gatesAfterPrune) gates.after = gatesAfterPrune;
    }
    rows = imageRows(plan, executed.results);
    const unrecorded = await recordPrune(inputs.stateDir, recorded, rows, after.disk);
    if (unrecorded) {
      hooks.warn(unrecorded);
      warnings.push(unrecorded);
    }
  }
  const decided = verdict({ inputs, gates, executed, budget: plan.budget });
  decided.warnings.forEach((w) => hooks.warn(w));

  const trend = trendOf(recorded, after.disk ?? disk.before);
  const facts = factsOf(
    pass,
    { inventory, nowMs, disk, plan, executed, after, gates, trend },
    decided,
    warnings,
  );
  const outcome = await finish(inputs, facts, gates, pass.timings, decided.failures, rows);
  hooks.info(closingLine(inputs, outcome.totals!, after.usage));
  return outcome;
}

/** A held clean-up lock is taken over after this long whatever its pid says: no run lasts as long. */
const CLEAN_LOCK_STALE_MS = 6 * 3_600_000;

interface CleanLock {
  lock?: Lock;
  /** Another prune of this daemon held the lock for the whole wait: this run only reports. */
  skip?: boolean;
  warnings: string[];
}

/**
 * The clean-up lock: one prune of a daemon at a time (job hooks of several runners, a schedule, a loop).
 * A prune waits up to `lock-wait` (at most half of `time-limit`), then skips: it reports what it would
 * remove and says why. A lock that cannot be taken for another reason (a planted file, no folder) is a
 * warning and the prune goes on without it: prunes side by side are safe, only wasteful.
 */
export async function holdCleanLock(inputs: Inputs, host: string, hooks: RunHooks): Promise<CleanLock> {
  const file = inputs.lockFile ?? join(privateDirOf(process.env), `clean-${hashOf(host)}.lock`);
  const refused = inputs.lockFile
    ? await mkdir(dirname(file), { recursive: true }).then(
        () => undefined,
        (error: unknown) => messageOf(error),
      )
    : await privateDir(dirname(file));
  if (refused)
    return { warnings: [`the clean-up lock ${file} cannot be taken (${refused}); pruning without it`] };
  const waitMs = Math.min(
    inputs.lockWaitMs,
    inputs.timeLimitMs === undefined ? Infinity : inputs.timeLimitMs / 2,
  );
  let told = false;
  const attempt = await takeLock(file, {
    waitMs,
    staleMs: CLEAN_LOCK_STALE_MS,
    onHeld: (pid) => {
      if (told) return;
      told = true;
      hooks.info(
        `another clean-up of this daemon holds ${file}${pid ? ` (pid ${pid})` : ''}: waiting up to ${durationText(waitMs)}`,
      );
    },
  });
  switch (attempt.kind) {
    case 'taken':
      return { lock: attempt.lock, warnings: [] };
    case 'busy':
      return {
        skip: true,
        warnings: [
          `another clean-up of this daemon${attempt.pid ? ` (pid ${attempt.pid})` : ''} held the lock ${file} ` +
            `for ${durationText(waitMs)} (lock-wait): this run removed nothing and reports what it would remove`,
        ],
      };
    case 'refused':
      return { warnings: [`the clean-up lock ${file} is refused (${attempt.why}); pruning without it`] };
    case 'error':
      return {
        warnings: [`the clean-up lock ${file} cannot be taken (${attempt.message}); pruning without it`],
      };
  }
}

const hashOf = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);

/** What every stage of a pass shares: the inputs, the daemon, the front door's hooks, the timings. */
interface Pass {
  inputs: Inputs;
  docker: DockerApi;
  hooks: RunHooks;
  /** Each phase's duration, ms, by key (`gatesMs`, `inventoryMs`, …): the report's `timings`. */
  timings: Record<string, number>;
  /** Runs a phase under the front door's group, recording its duration. */
  timed: Phase;
}

function startPass(inputs: Inputs, docker: DockerApi, hooks: RunHooks): Pass {
  const timings: Record<string, number> = {};
  const timed: Phase = async (name, key, fn) => {
    const start = performance.now();
    try {
      return await hooks.group(name, fn);
    } finally {
      timings[key] = Math.round(performance.now() - start);
    }
  };
  return { inputs, docker, hooks, timings, timed };
}

/** Reach the daemon: a DaemonUnreachableError saying what to check when nothing answers as Docker. */
async function reachDaemon(docker: DockerApi): Promise<void> {
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
}

/** The safety gates before anything is planned, each logged; none without critical containers. */
async function gatesBefore({ inputs, docker, hooks, timed }: Pass): Promise<GateResult[]> {
  if (inputs.criticalContainers.length === 0) return [];
  const before = await timed('Safety gates', 'gatesMs', () =>
    checkGates(docker, inputs.criticalContainers, inputs.gateTimeoutMs, (line) => hooks.info(line)),
  );
  before.forEach((g) => hooks.info(`${g.container}: ${g.ok ? 'ok' : 'FAILED'}, ${g.reason}`));
  return before;
}

/** The safety gates again after a prune; undefined without critical containers. */
async function gatesAfter({ inputs, docker, hooks, timed }: Pass): Promise<GateResult[] | undefined> {
  if (inputs.criticalContainers.length === 0) return undefined;
  return timed('Safety gates after the prune', 'gatesAfterMs', () =>
    checkGates(docker, inputs.criticalContainers, inputs.gateTimeoutMs, (line) => hooks.info(line)),
  );
}

/** The daemon's inventory (with buildx's builders when asked for), its reads' timings and one line. */
async function readInventory({ inputs, docker, hooks, timings, timed }: Pass): Promise<Inventory> {
  const info = (line: string) => hooks.info(line);
  const inventory = await timed('Inventory', 'inventoryMs', async () => {
    let taken: Inventory;
    try {
      taken = await takeInventory(docker, READ_CONNECTIONS, timesNeeded(inputs));
    } catch (error) {
      throw new InventoryError(
        `Could not take an inventory of the Docker daemon at ${docker.host}: ${describeError(error)}`,
      );
    }
    if (inputs.buildxBuilders === 'stale') taken.builders = await readBuilders(docker, inputs, taken, info);
    const e = taken.engine;
    info(
      `${taken.images.length} images, ${taken.containers.length} containers; ${engineName(e)} ${e.version} ` +
        `(API ${e.apiVersion}, ${e.imageStore} image store) at ${docker.host}`,
    );
    return taken;
  });
  for (const [phase, ms] of Object.entries(inventory.phases ?? {})) timings[`inventory.${phase}`] = ms;
  return inventory;
}

/** buildx's builder containers, with what this host's buildx lists (`buildx-builders: stale`). */
async function readBuilders(
  docker: DockerApi,
  inputs: Inputs,
  inventory: Inventory,
  info: (line: string) => void,
): Promise<BuilderInfo[]> {
  const listing = await listBuildxBuilders(docker.host, process.env, Math.min(inputs.apiTimeoutMs, 30_000));
  if (listing.unavailable)
    info(`buildx builders: no listing from this host's buildx (${listing.unavailable})`);
  const builders = await inspectBuilders(docker, inventory.containers, listing, process.env.BUILDX_BUILDER);
  info(
    `buildx builders: ${builders.length} builder container(s)` +
      (listing.unavailable
        ? ''
        : `; buildx knows ${listing.builders.map((b) => b.name).join(', ') || 'none'}`),
  );
  return builders;
}

/** This daemon's usage history, read for the budget's order and the grace period's first sightings. */
interface History {
  /** The daemon's ID, or its address when it has none. */
  daemonKey: string;
  usage?: DaemonUsage;
  /** Why there is no history, when that matters to this run (always with a budget). */
  warnings: string[];
}

/**
 * The daemon's key in the usage history: Docker's ID (`/info`, stable across restarts); Podman, which has
 * none, by its storage root; else the address.
 */
function daemonKeyOf(inventory: Inventory, host: string): string {
  if (inventory.engine.id) return inventory.engine.id;
  return inventory.engine.name === 'podman' && inventory.rootDir ? `podman:${inventory.rootDir}` : host;
}

/** History: the usage this daemon's earlier runs recorded (every run records, in any mode). */
async function readHistory({ inputs, docker }: Pass, inventory: Inventory): Promise<History> {
  const daemonKey = daemonKeyOf(inventory, docker.host);
  const read = await readState(inputs.stateDir);
  const warnings =
    read.warning && (hasBudget(inputs) || !read.warning.startsWith('no usage history')) ? [read.warning] : [];
  return { daemonKey, usage: read.state.daemons[daemonKey], warnings };
}

/** The filesystems measured and their figures before anything is removed. */
interface Disk {
  places: DiskPlaces;
  before?: DiskStats;
  dataRootBefore?: DiskStats;
  /** The data root's space the daemon does not account for, or why it is not known; undefined: not local. */
  unaccounted?: Unaccounted | NotMeasured;
}

async function diskBefore({ inputs, docker }: Pass, inventory: Inventory): Promise<Disk> {
  const places = await locateDisk(docker.host, inventory, inputs.dataPath);
  const before = await diskStats(places.measured?.path);
  const dataRootBefore = await diskStats(places.dataRoot?.path);
  const unaccounted = await unaccountedBefore(inputs, inventory, places, docker.host);
  return { places, before, dataRootBefore, unaccounted };
}

/**
 * The data root's space the daemon does not account for (src/engine/unaccounted.ts), where the data root
 * is on this machine and holds the images. On the containerd store that is where containerd's root is
 * dockerd's own (`<data-root>/containerd/daemon`); a containerd root elsewhere may hold other clients'
 * images too, and is not measured.
 */
async function unaccountedBefore(
  inputs: Inputs,
  inventory: Inventory,
  places: DiskPlaces,
  host: string,
): Promise<Unaccounted | NotMeasured | undefined> {
  const root = inventory.rootDir;
  if (!isLocalDataRoot(host, root)) return undefined;
  const snapshots = places.measured?.holds === 'snapshots' ? places.measured.path : undefined;
  if (inventory.engine.imageStore === 'containerd' && !(snapshots && isInside(snapshots, root))) {
    return { path: root, why: "the images are in containerd's root, outside the data root" };
  }
  const used = await usedUnder(root, { walk: hasBudget(inputs) });
  return 'why' in used ? used : unaccountedOf(used, inventory.usage);
}

const isInside = (path: string, folder: string) =>
  path.startsWith(folder.endsWith('/') ? folder : `${folder}/`);

/** What the plan is made of: a plan again after a budgeted prune met its budget sooner is the same. */
interface Planning {
  inventory: Inventory;
  policy: BudgetPolicy;
  nowMs: number;
  disk?: DiskStats;
  lastUsed: Map<string, number>;
}

function planningOf(
  inputs: Inputs,
  inventory: Inventory,
  history: History,
  disk: Disk,
  nowMs: number,
): Planning {
  const { images, containers } = inventory;
  const used = containerUseTimes(images, containers, history.usage, nowMs);
  return {
    inventory,
    policy: {
      ...inputs,
      firstSeen: firstSeenOf(history.usage),
      ...(inputs.keepRecentBy === 'used' ? { lastUse: used } : {}),
    },
    nowMs,
    disk: disk.before,
    lastUsed: lastUsedTimes(images, containers, history.usage, nowMs, used),
  };
}

/** The plan (budgeted when a budget is given); after `stepsDone` steps, the plan of a prune that met it. */
function planOf({ inventory, policy, nowMs, disk, lastUsed }: Planning, stepsDone?: number): Plan {
  return planWithBudget(inventory, policy, nowMs, { disk, lastUsed, stepsDone });
}

/** Plan: the decisions, each logged with its reason. */
async function planPass({ hooks, timed }: Pass, planning: Planning): Promise<Plan> {
  return timed('Plan', 'planMs', async () => {
    const plan = planOf(planning);
    const say = hooks.decision ?? hooks.info;
    planLines(plan).forEach((line) => say(line));
    return plan;
  });
}

/** One line per image, per container, network and volume the plan looked at, build cache, budget. */
function planLines(plan: Plan): string[] {
  return [
    ...plan.images.map((d) => {
      const what = d.image.repoTags.length > 0 ? d.image.repoTags.join(' ') : shortId(d.image.id);
      return `${d.action === 'remove' ? 'remove' : `keep (${d.reason})`}: ${what}: ${d.detail}`;
    }),
    ...plan.objects
      .filter((o) => o.reason !== 'not-selected')
      .map(
        (o) => `${o.action === 'remove' ? 'remove' : `keep (${o.reason})`}: ${o.kind} ${o.name}: ${o.detail}`,
      ),
    ...(plan.buildCache ? [`build cache: ${plan.buildCache.detail}`] : []),
    ...(plan.budget ? budgetLines(plan.budget) : []),
  ];
}

/** What the pass warns of before it removes anything. */
function passWarnings(inventory: Inventory, history: History, plan: Plan): string[] {
  return [
    ...(inventory.warnings ?? []),
    ...history.warnings,
    ...plan.unmatchedProtect.map((entry) => `protect entry "${entry}" matched nothing`),
    ...(plan.budget?.unmeasurable ?? []),
  ];
}

/** Record usage: this run's sightings and its filesystem into the history (src/history.ts). */
async function recordUsage(
  { inputs }: Pass,
  inventory: Inventory,
  history: History,
  disk: Disk,
  nowMs: number,
): Promise<Recorded> {
  const place = { path: disk.places.measured?.path, before: disk.before };
  return recordStart(inputs.stateDir, inventory, history.daemonKey, place, nowMs);
}

/**
 * Prune: removes the plan, or a budget's steps while the filesystem still needs them (then plans again
 * with the steps done, the rest kept: budget met); warns of each object that could not be removed.
 */
async function prune(
  { docker, hooks, timed }: Pass,
  planning: Planning,
  plan: Plan,
  disk: Disk,
): Promise<{ executed: Executed; plan: Plan }> {
  const info = (line: string) => hooks.info(line);
  const connections = deleteConnections(planning.inventory.engine.imageStore);
  let executed: Executed;
  let done = plan;
  if (plan.budget) {
    const budgetRun = await executeBudget(docker, plan, connections, timed, info, async () => {
      const now = await diskStats(disk.places.measured?.path);
      return { freeBytes: now?.freeBytes, freeInodes: now?.freeInodes };
    });
    // The filesystem met the budget sooner than the estimate: the rest is kept, budget met.
    if (budgetRun.stepsDone < plan.budget.steps.length) done = planOf(planning, budgetRun.stepsDone);
    executed = budgetRun;
  } else {
    executed = await executePlan(docker, plan, connections, timed, info);
  }
  removalWarnings(done, executed).forEach((w) => hooks.warn(w));
  return { executed, plan: done };
}

/**
 * What a prune warns of: the build cache not pruned, each image or object that could not be removed
 * (not the ones skipped after a stop: the verdict counts those), images a delete removed beyond the plan
 * and tags put back.
 */
function removalWarnings(plan: Plan, executed: Executed): string[] {
  const { results, objectResults, buildCacheResult } = executed;
  const warnings: string[] = [];
  if (buildCacheResult && buildCacheResult.status !== 'removed') {
    warnings.push(`build cache not pruned: ${buildCacheResult.message}`);
  }
  const planned = new Map(plan.images.map((d) => [d.image.id, d.image]));
  for (const r of results.filter((r) => failed(r) && !r.skipped)) {
    warnings.push(`could not remove image ${describe(planned.get(r.id), r.id)}: ${r.message}`);
  }
  for (const r of results) {
    // Races with jobs in flight: say what the daemon did beyond the plan, and what was put back.
    if (r.unplanned?.length) {
      warnings.push(
        `removing image ${describe(planned.get(r.id), r.id)} also removed image(s) the plan kept or never saw: ` +
          `${r.unplanned.map(shortId).join(', ')} (a tag moved to them during the run)`,
      );
    }
    if (r.restored?.length) {
      warnings.push(
        `put back tag(s) ${r.restored.join(', ')} of image ${shortId(r.id)}, which the daemon refused to remove`,
      );
    }
  }
  for (const r of objectResults.filter((r) => failed(r) && !r.skipped)) {
    warnings.push(`could not remove ${r.kind} ${r.id.slice(0, 64)}: ${r.message}`);
  }
  return warnings;
}

/** A removal that did not happen: an error, or a conflict (the object gained a user since the plan). */
const failed = (r: RemovalResult | ObjectResult) => r.status === 'error' || r.status === 'conflict';

/** What a prune that went to its end measures: the daemon's usage and the filesystems now. */
interface Measurement {
  usage?: Usage;
  disk?: DiskStats;
  dataRoot?: DiskStats;
}

/** Measure, after a prune that was not stopped; a budget records what it finds (`budget.after`). */
async function measure(
  { docker, timings }: Pass,
  inventory: Inventory,
  disk: Disk,
  budget: BudgetPlan | undefined,
): Promise<Measurement> {
  const measuring = performance.now();
  const usage = await measureUsage(docker, inventory).catch(() => undefined);
  const after = await diskStats(disk.places.measured?.path);
  const dataRoot = await diskStats(disk.places.dataRoot?.path);
  timings.measureMs = Math.round(performance.now() - measuring);
  if (budget) recordBudgetEnd(budget, after, usage);
  return { usage, disk: after, dataRoot };
}

/** The budget's end after a prune: what the filesystem and the daemon show now, and whether it is met. */
function recordBudgetEnd(
  budget: BudgetPlan,
  diskAfter: DiskStats | undefined,
  usageAfter: Usage | undefined,
) {
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
}

/** What the verdict is given: plain data of the pass's end. */
export interface PassEnd {
  inputs: Pick<Inputs, 'mode' | 'failOnError'>;
  gates: GateReport;
  /** What the prune did; undefined in report mode, or before the prune. */
  executed?: Pick<Executed, 'results' | 'objectResults' | 'buildCacheResult' | 'stopped'>;
  /** The plan's budget, with `after` and `metAfterPrune` once measured after a prune. */
  budget?: BudgetPlan;
}

/** Why the run fails (each a sentence for the step's error), and what it warns of besides. */
export interface Verdict {
  failures: string[];
  warnings: string[];
}

/**
 * Verdict, pure: a safety gate that failed before anything else decides alone; else the prune that
 * stopped (with what was done, failed and not attempted) or, with fail-on-error, the objects that could
 * not be removed; the gates after the prune; and the budget, which warns when it cannot be met or is not
 * met after the prune, and fails the run then with fail-on-error.
 */
export function verdict({ inputs, gates, executed, budget }: PassEnd): Verdict {
  const gateFailed = gates.before.filter((g) => !g.ok);
  if (gateFailed.length > 0) {
    const nothing = inputs.mode === 'prune' ? 'removed' : 'planned';
    return {
      failures: [`safety gate failed, nothing was ${nothing}: ${gateList(gateFailed)}`],
      warnings: [],
    };
  }
  const failures = executed ? pruneFailures(inputs, executed) : [];
  const afterFailed = (gates.after ?? []).filter((g) => !g.ok);
  if (afterFailed.length > 0) failures.push(`after the prune: ${gateList(afterFailed)}`);
  const warnings = budget ? budgetWarnings(budget) : [];
  if (budget && inputs.failOnError && (budget.shortfallBytes > 0 || budget.metAfterPrune === false)) {
    failures.push('the budget is not met (fail-on-error is true)');
  }
  return { failures, warnings };
}

const gateList = (gates: GateResult[]) => gates.map((g) => `${g.container} ${g.reason}`).join(', ');

/** A stopped prune fails the run, saying how far it got; otherwise objects not removed, with fail-on-error. */
function pruneFailures(inputs: PassEnd['inputs'], executed: NonNullable<PassEnd['executed']>): string[] {
  const all = [...executed.results, ...executed.objectResults];
  const count = (test: (r: RemovalResult | ObjectResult) => boolean) => all.filter(test).length;
  if (executed.stopped) {
    const notAttempted = count((r) => !!r.skipped);
    const failedCount = count((r) => r.status === 'error' && !r.skipped);
    const done = count((r) => r.status !== 'error');
    return [
      `stopped: ${executed.stopped}. Of ${all.length} planned removal(s): ${done} done, ${failedCount} failed, ` +
        `${notAttempted} not attempted (listed in the summary and the report)`,
    ];
  }
  const errors = count(failed);
  if (inputs.failOnError && (errors > 0 || executed.buildCacheResult?.status === 'error')) {
    return [`${errors} object(s) could not be removed (fail-on-error is true)`];
  }
  return [];
}

/** The budget's warnings: by how much it falls short and what holds the space, or not met as measured. */
function budgetWarnings(budget: BudgetPlan): string[] {
  const short = budget.shortfallBytes > 0;
  if (short) {
    const held = budget.holding
      .map((h) => `${h.kind} ${h.name} (${formatBytes(h.bytes)}, ${h.reason})`)
      .join('; ');
    return [
      `the budget cannot be met: every allowed removal frees ${formatBytes(budget.needBytes - budget.shortfallBytes)} ` +
        `of the ${formatBytes(budget.needBytes)} needed, ${formatBytes(budget.shortfallBytes)} short` +
        (held ? `; the largest kept: ${held}` : ''),
    ];
  }
  return budget.metAfterPrune === false
    ? ['the budget is not met after the prune, as measured now (see the budget section)']
    : [];
}

/** The facts of a pass that got as far as a plan, for the report and both front doors. */
function factsOf(
  { inputs, docker, timings }: Pass,
  end: {
    inventory: Inventory;
    nowMs: number;
    disk: Disk;
    plan: Plan;
    executed?: Executed;
    after: Measurement;
    gates: GateReport;
    trend?: Trend;
  },
  decided: Verdict,
  warnings: string[],
): RunFacts {
  const { inventory, disk, after, executed } = end;
  return {
    plan: end.plan,
    results: executed?.results,
    objectResults: executed?.objectResults,
    buildCacheResult: executed?.buildCacheResult,
    host: docker.host,
    engine: inventory.engine,
    nowMs: end.nowMs,
    usageBefore: inventory.usage,
    usageAfter: after.usage,
    measured: measuredClasses(inputs),
    diskFreeBefore: disk.before?.freeBytes,
    diskTotal: disk.before?.totalBytes,
    diskFreeAfter: after.disk?.freeBytes,
    inodesFreeBefore: disk.before?.freeInodes,
    inodesFreeAfter: after.disk?.freeInodes,
    diskPlace: disk.places.measured,
    ...(disk.unaccounted ? { unaccounted: disk.unaccounted } : {}),
    dataRootDisk: disk.places.dataRoot && {
      path: disk.places.dataRoot.path,
      freeBefore: disk.dataRootBefore?.freeBytes,
      freeAfter: after.dataRoot?.freeBytes,
      inodesFreeBefore: disk.dataRootBefore?.freeInodes,
      inodesFreeAfter: after.dataRoot?.freeInodes,
    },
    ...(end.trend ? { trend: end.trend } : {}),
    timings,
    warnings: [...warnings, ...decided.warnings],
    gates: end.gates,
    failures: decided.failures,
  };
}

/** The closing line: what was removed (or would be), estimated and measured. */
function closingLine(inputs: Inputs, totals: Totals, usageAfter: Usage | undefined): string {
  return (
    `${inputs.mode === 'prune' ? 'removed' : 'would remove'} ${totals.removed} image(s); ` +
    `estimated ${formatBytes(totals.estimatedBytes)}` +
    (inputs.mode === 'prune'
      ? `, measured ${usageAfter === undefined ? 'unknown' : formatBytes(totals.reclaimedBytes)}`
      : '')
  );
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
    containerTimes:
      budgeted ||
      (inputs.minAgeMs > 0 && inputs.containers === 'stopped') ||
      (inputs.keepRecentBy === 'used' && inputs.keepRecent > 0),
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

/**
 * Rows (`known`: those a prune already made of the pass's plan and results), totals and the JSON report of
 * the pass, written to the report file.
 */
async function finish(
  inputs: Inputs,
  facts: RunFacts | undefined,
  gates: GateReport,
  timings: Record<string, number>,
  failures: string[],
  known?: ImageRow[],
): Promise<Outcome> {
  const rows = facts ? (known ?? imageRows(facts.plan, facts.results)) : [];
  const totals = facts ? totalsOf(facts, rows) : undefined;
  timings.totalMs = Math.round(performance.now());
  const report: Record<string, unknown> = facts
    ? buildReport(facts, rows)
    : { version: 1, status: statusOf(failures), mode: inputs.mode, gates, images: [], failures, timings };
  await writeReport(inputs.reportFile, report);
  return { inputs, facts, rows, totals, gates, report, failures };
}

/** The JSON report to `file`, its folder made first, through a new file renamed over: a symlink planted at the report's name is replaced, not followed. */
async function writeReport(file: string, report: object): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFileAtomic(file, JSON.stringify(report, null, 2), 0o644);
}

/**
 * Why a run failed before its pass began, when it did: an invalid input (InputError, thrown only before
 * the daemon is asked anything) or no daemon at the host (DaemonUnreachableError, from the first ping).
 * Undefined for any other error: those come later, when the pass may have removed something.
 */
export function earlyFailureOf(error: unknown): EarlyFailure | undefined {
  if (error instanceof InputError) {
    return { kind: 'invalid-input', message: error.message, input: error.input };
  }
  if (error instanceof DaemonUnreachableError) return { kind: 'daemon-unreachable', message: error.message };
  if (error instanceof InventoryError) return { kind: 'inventory-failed', message: error.message };
  return undefined;
}

/** A run that failed before its pass began: its report, and the file it went to or why none. */
export interface FailedRun {
  report: FailureReport;
  /** The report file written. */
  file?: string;
  /** Why no report file was written (one line, for the log and the summary). */
  notWritten?: string;
}

/**
 * The report of a run that failed before its pass began, written where a pass would write it: the
 * report-file given, else its default. Not when report-file is the input at fault, nor where `refuse`
 * (the command's check of its private folder) says no; a write that fails is said, not thrown: the run's
 * own error stays the one reported.
 */
export async function reportEarlyFailure(
  failure: EarlyFailure,
  given: (name: string) => string,
  env: Record<string, string | undefined>,
  refuse?: (file: string) => Promise<string | undefined>,
): Promise<FailedRun> {
  const report = buildFailureReport({ failure, inputs: givenInputs(given), nowMs: Date.now() });
  if (failure.input === 'report-file') return { report, notWritten: 'report-file is the invalid input' };
  const file = given('report-file').trim() || defaultReportFile(env);
  try {
    const refused = await refuse?.(file);
    if (refused) return { report, notWritten: refused };
    await writeReport(file, report);
    return { report, file };
  } catch (error) {
    return { report, notWritten: `${file} could not be written: ${messageOf(error)}` };
  }
}
