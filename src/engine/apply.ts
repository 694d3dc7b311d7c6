// Doing: remove exactly the plan, never with force. An image's extra tags go by name, the image itself by
// ID (Docker refuses, with a 409, an image that gained a container or a reference since the plan).
// Failures are collected per object, not thrown.

import { isConnectionError, isRunTimeLimit, statusOf, type DockerApi } from './docker';
import { mapPool } from './pool';
import { apiAtLeast, pushTo, sumOf } from '../collections';
import { formatBytes } from '../units';
import { budgetMet, type Measured } from '../policy/budget';
import type {
  BuildCachePlan,
  BuildCacheResult,
  ImageInfo,
  ObjectDecision,
  ObjectResult,
  Plan,
  RemovalResult,
} from '../types';
import { messageOf } from '../errors';

export interface DeleteItem {
  Untagged?: string;
  Deleted?: string;
}

/**
 * Images related by parent links are deleted one after another, children first: Docker removes an
 * untagged parent with its last child, and two siblings deleted at once can each see the other and
 * both leave the parent behind. Unrelated images are deleted concurrently.
 */
export function deletionGroups(plan: Plan): ImageInfo[][] {
  const byId = new Map(plan.images.map((d) => [d.image.id, d.image]));
  const cascade = new Set(plan.cascade);
  const gone = new Set([
    ...cascade,
    ...plan.images.filter((d) => d.action === 'remove').map((d) => d.image.id),
  ]);
  const depth = (image: ImageInfo) => {
    let n = 0;
    for (let p = byId.get(image.parentId); p; p = byId.get(p.parentId)) n++;
    return n;
  };
  const groups = new Map<string, ImageInfo[]>();
  for (const decision of plan.images) {
    if (decision.action !== 'remove' || cascade.has(decision.image.id)) continue;
    let root = decision.image;
    for (let p = byId.get(root.parentId); p && gone.has(p.id); p = byId.get(p.parentId)) root = p;
    pushTo(groups, root.id, decision.image);
  }
  return [...groups.values()].map((group) => group.sort((a, b) => depth(b) - depth(a)));
}

/** When the breaker checks the daemon, and when it stops the run even though the checks pass. */
export const BREAKER_LIMITS = {
  /** Removals in a row that failed with a server error (5xx) before the daemon is checked. */
  probeAfter: 3,
  /** Removals in a row that failed with a server error or no answer: the run stops, checks or not. */
  stopAfter: 24,
};

/**
 * The circuit breaker of a prune: stops the run at once when the daemon is going or gone, rather than
 * fail every remaining object one error (or one timeout) at a time.
 *
 * Every removal reports its outcome. A request that got no HTTP answer (refused, reset, timed out), or
 * `probeAfter` removals in a row that got a server error (5xx), make it check the daemon (see
 * DockerApi.probe: `/_ping` and a read of its image store, both on new connections): if that fails, the
 * daemon is stopping, stopped or hung, and the run stops. While a check runs, no new removal starts. If
 * the check passes, the errors were the objects' own (a single image's 500 is a per-object warning) and
 * the run goes on; but `stopAfter` failures in a row stop it regardless. Any answer below 500 (done,
 * 404, 409) resets the count. The whole run's time limit stops it too.
 */
export class Stopper {
  /** Why the run stopped, once it has. */
  reason?: string;
  private streak = 0;
  private probedAt = 0;
  private checking?: Promise<void>;

  constructor(
    private readonly docker: DockerApi,
    private readonly limits = BREAKER_LIMITS,
  ) {}

  /** Before each removal: waits for a running check; false once the run has stopped. */
  async proceed(): Promise<boolean> {
    while (this.checking) await this.checking;
    if (!this.reason && this.docker.timeLeft() <= 0) {
      this.reason = `the run reached its time limit (set by api-timeout) waiting for the daemon at ${this.docker.host}`;
    }
    return !this.reason;
  }

  /** After each removal: `error` is what made it fail (undefined when the daemon answered below 500). */
  async record(error?: unknown): Promise<void> {
    if (this.reason) return;
    const status = error === undefined ? 200 : statusOf(error);
    if (status !== undefined && status < 500) {
      this.streak = 0;
      this.probedAt = 0;
      return;
    }
    this.streak++;
    const last = messageOf(error);
    if (isRunTimeLimit(error)) {
      this.reason = last;
      return;
    }
    const failures = `${this.streak} removal(s) in a row failed (last: ${last})`;
    if (this.streak >= this.limits.stopAfter) {
      this.reason = `the daemon at ${this.docker.host} answers, but ${failures}`;
      return;
    }
    if (status === undefined || this.streak - this.probedAt >= this.limits.probeAfter) {
      this.probedAt = this.streak;
      this.checking ??= this.check(failures).finally(() => (this.checking = undefined));
    }
    await this.checking;
  }

  private async check(failures: string): Promise<void> {
    try {
      await this.docker.probe();
    } catch (error) {
      const why = isRunTimeLimit(error) ? 'the run reached its time limit' : lossOf(error);
      this.reason ??= `the daemon at ${this.docker.host} ${why}, after ${failures}`;
    }
  }
}

/** The result of a removal the run stopped before: a failure, skipped, with the stop's reason. */
function notAttempted(stopper: Stopper): { status: 'error'; message: string; skipped: true } {
  return { status: 'error', message: `not attempted: ${stopper.reason}`, skipped: true };
}

/** What a failed check says about the daemon. */
function lossOf(error: unknown): string {
  const code = (error as { code?: string })?.code;
  const message = messageOf(error);
  if (code === 'ECONNREFUSED' || code === 'ENOENT') {
    return `stopped accepting connections, it is shutting down or gone (${message})`;
  }
  if (code === 'ETIMEDOUT') return `stopped answering, it is hung or unreachable (${message})`;
  if (statusOf(error) !== undefined) return `fails even a read of its image list (${message})`;
  return `stopped answering (${message})`;
}

export async function applyPlan(
  docker: DockerApi,
  plan: Plan,
  concurrency: number,
  stopper: Stopper,
  onProgress: (done: number, total: number) => void = () => {},
): Promise<RemovalResult[]> {
  const remove = removerOf(docker, plan);
  const groups = deletionGroups(plan);
  const total = sumOf(groups, (g) => g.length);
  let done = 0;
  const perGroup = await mapPool(groups, concurrency, async (group) => {
    const results: RemovalResult[] = [];
    for (const image of group) {
      if (!(await stopper.proceed())) {
        results.push({ id: image.id, ...notAttempted(stopper), deleted: [], untagged: [] });
        continue;
      }
      const [result, failure] = await remove(image);
      results.push(result);
      onProgress(++done, total);
      await stopper.record(failure);
    }
    return results;
  });
  return perGroup.flat();
}

const OBJECT_PATHS: Record<ObjectDecision['kind'], string> = {
  container: '/containers',
  network: '/networks',
  volume: '/volumes',
};

/** Removes planned containers, networks or volumes one by one; with force only idle buildx builders (planned so). */
export async function removeObjects(
  docker: DockerApi,
  decisions: ObjectDecision[],
  concurrency: number,
  stopper: Stopper,
): Promise<ObjectResult[]> {
  return mapPool(decisions, concurrency, async ({ kind, id, force }): Promise<ObjectResult> => {
    if (!(await stopper.proceed())) {
      return { kind, id, ...notAttempted(stopper) };
    }
    try {
      // `v: false`: a container's anonymous volumes are the volumes class's business.
      await docker.request(
        'DELETE',
        `${OBJECT_PATHS[kind]}/${encodeURIComponent(id)}`,
        kind === 'container' ? { v: false, ...(force ? { force: true } : {}) } : {},
      );
      await stopper.record();
      return { kind, id, status: 'removed' };
    } catch (error) {
      const status = statusOf(error);
      await stopper.record(error);
      if (status === 404) return { kind, id, status: 'gone', message: 'already removed by someone else' };
      // 409 (or 403 for networks): in use since the plan.
      const conflict = status === 409 || status === 403;
      return { kind, id, status: conflict ? 'conflict' : 'error', message: messageOf(error) };
    }
  });
}

/** One `/build/prune` call; dockerode drops its options, so the query is built here. */
export async function pruneBuildCache(docker: DockerApi, plan: BuildCachePlan): Promise<BuildCacheResult> {
  const query: Record<string, unknown> = { all: true };
  if (plan.keepStorage !== undefined) {
    // API 1.48 deprecated keep-storage for reserved-space (a floor: "always allowed to keep"; the current
    // API reference lists only reserved-space and max-used-space) and added max-used-space: the cache is
    // pruned, least recently used first, down to that size. Measured on
    // Docker 28.5 (API 1.51): max-used-space alone frees what keep-storage frees on 1.41-1.45; with
    // reserved-space set to the same figure it freed half of that.
    if (apiAtLeast(plan.apiVersion ?? '1.41', 1, 48)) {
      query['max-used-space'] = plan.keepStorage;
    } else query['keep-storage'] = plan.keepStorage;
  }
  if (plan.until !== undefined) query.filters = JSON.stringify({ until: [plan.until] });
  try {
    const answer = await docker.request<{ SpaceReclaimed?: number }>('POST', '/build/prune', query);
    return { status: 'removed', reclaimedBytes: answer?.SpaceReclaimed ?? 0 };
  } catch (error) {
    // Another run's prune holds the lock: it is doing this work already.
    if (statusOf(error) === 409) return { status: 'busy', reclaimedBytes: 0, message: messageOf(error) };
    return { status: 'error', reclaimedBytes: 0, message: messageOf(error) };
  }
}

/** Removes one image of the plan as the plan says: with noprune, or only its tags, where it says so. */
function removerOf(docker: DockerApi, plan: Plan) {
  const noPrune = new Set(plan.noPrune);
  const untagOnly = new Set(plan.untagOnly);
  const expected = expectedOf(plan);
  return (image: ImageInfo) =>
    removeImage(docker, image, {
      noprune: noPrune.has(image.id),
      untagOnly: untagOnly.has(image.id),
      expected,
    });
}

/** What the plan lets a removal delete, and which image IDs it knows. */
export interface Expected {
  /** The images the plan removes and the untagged parents Docker deletes with them (plan.cascade). */
  removable: Set<string>;
  /** Every image of the inventory: tells an image's ID from a layer's in the classic store's answers. */
  known: Set<string>;
}

export function expectedOf(plan: Plan): Expected {
  return {
    removable: new Set([
      ...plan.images.filter((d) => d.action === 'remove').map((d) => d.image.id),
      ...plan.cascade,
    ]),
    known: new Set(plan.images.map((d) => d.image.id)),
  };
}

export interface RemoveOptions {
  noprune: boolean;
  untagOnly: boolean;
  expected: Expected;
}

/**
 * Image IDs an answer to one DELETE names as deleted that the plan does not remove. The first `Deleted`
 * entry is always the image the name resolved to (moby lists it, then on the classic store its layers'
 * chain IDs, then the parents it pruned); a later entry counts when it is an image of the inventory.
 */
export function unplannedIn(items: DeleteItem[], expected: Expected): string[] {
  const deleted = items.flatMap((item) => (item.Deleted ? [withPrefix(item.Deleted)] : []));
  return deleted.filter((id, i) => !expected.removable.has(id) && (i === 0 || expected.known.has(id)));
}

/** Podman names deleted images without `sha256:`; the inventory's IDs have it. */
const withPrefix = (id: string) => (/^[0-9a-f]{64}$/.test(id) ? `sha256:${id}` : id);

/** IDs equal with or without the `sha256:` prefix (Podman's container list may leave it out). */
const sameId = (a: string, b: string) => a.replace(/^sha256:/, '') === b.replace(/^sha256:/, '');

/**
 * A container that uses the image now, if any (its name). The `ancestor` filter takes the ID without
 * `sha256:`: Podman 4.3 matches only that form (Docker 20.10 and 28.5, both stores, take either). It also
 * matches containers of child images, so the IDs are compared here.
 */
export async function containerUsing(docker: DockerApi, id: string): Promise<string | undefined> {
  const containers = await docker.request<{ Id: string; ImageID?: string; Names?: string[] }[]>(
    'GET',
    '/containers/json',
    { all: true, filters: JSON.stringify({ ancestor: [id.replace(/^sha256:/, '')] }) },
  );
  const user = (containers ?? []).find((c) => c.ImageID !== undefined && sameId(c.ImageID, id));
  return user && (user.Names?.[0]?.replace(/^\//, '') ?? user.Id.slice(0, 12));
}

/** `repo:tag` split for POST /images/{id}/tag: the tag follows the last colon after the last slash. */
export function splitTag(reference: string): { repo: string; tag: string } {
  const colon = reference.lastIndexOf(':');
  if (colon <= reference.lastIndexOf('/')) return { repo: reference, tag: 'latest' };
  return { repo: reference.slice(0, colon), tag: reference.slice(colon + 1) };
}

/**
 * Puts back tags this run removed from an image the daemon then refused to delete (409: it gained a
 * container or a reference), but only a tag that points at nothing now: one a build moved to another
 * image stays where it is. Returns the tags put back, and the failures to do so.
 */
async function restoreTags(
  docker: DockerApi,
  id: string,
  tags: string[],
): Promise<{ restored: string[]; failed: string[] }> {
  const restored: string[] = [];
  const failed: string[] = [];
  for (const tag of tags) {
    try {
      const taken = await docker.request('GET', `/images/${encodeURIComponent(tag)}/json`).then(
        () => true,
        (e: unknown) => (statusOf(e) === 404 ? false : Promise.reject(e)),
      );
      if (taken) continue;
      await docker.request('POST', `/images/${encodeURIComponent(id)}/tag`, splitTag(tag));
      restored.push(tag);
    } catch (error) {
      failed.push(`${tag} (${messageOf(error)})`);
    }
  }
  return { restored, failed };
}

/** Removes one image; returns its result and, when it failed, the error that decided it. */
export async function removeImage(
  docker: DockerApi,
  image: ImageInfo,
  { noprune, untagOnly, expected }: RemoveOptions,
): Promise<[RemovalResult, unknown?]> {
  const result: RemovalResult = { id: image.id, status: 'removed', deleted: [], untagged: [] };
  /** Tags this run removed from the image, to put back if the daemon then refuses to delete it. */
  const removedTags: string[] = [];
  const remove = async (name: string, prune: boolean) => {
    const items =
      (await docker.request<DeleteItem[]>('DELETE', `/images/${encodeURIComponent(name)}`, {
        noprune: !prune,
      })) ?? [];
    for (const item of items) {
      if (item.Deleted) result.deleted.push(item.Deleted);
      if (item.Untagged) result.untagged.push(item.Untagged);
    }
    const unplanned = unplannedIn(items, expected);
    if (unplanned.length > 0) result.unplanned = [...(result.unplanned ?? []), ...unplanned];
    return items;
  };
  const ignoreMissing = (error: unknown) => (statusOf(error) === 404 ? undefined : Promise.reject(error));
  const tags = untagOnly ? image.repoTags : image.repoTags.slice(1);
  try {
    // A job may have started a container from the image since the inventory (`docker run app:1`): its
    // tags stay. Docker itself would refuse only the last one, after the others were gone.
    const user = tags.length > 0 ? await containerUsing(docker, image.id) : undefined;
    if (user) {
      return [{ ...result, status: 'conflict', message: `gained a container since the inventory (${user})` }];
    }
    // Tags are removed by name, but only while they still point at this image: a build may have moved
    // `app:latest` to a new image since the inventory. Moby has no delete-if-still-this-image for a tag
    // on the classic store, so a move between the check and the delete is still possible: noprune keeps
    // the damage to that image (reported as unplanned) and spares its parents.
    for (const tag of tags) {
      const current = await docker
        .request<{ Id: string }>('GET', `/images/${encodeURIComponent(tag)}/json`)
        .catch(ignoreMissing);
      if (current?.Id !== image.id) continue;
      const items = await remove(tag, false).catch(ignoreMissing);
      if (items?.some((item) => item.Untagged)) removedTags.push(tag);
    }
    if (untagOnly) return [{ ...result, status: result.untagged.length > 0 ? 'untagged' : 'gone' }];
    // The last reference goes by ID: Docker deletes an image by ID when at most one tag is left, and
    // answers 409 rather than touch an image that gained a reference or a container since the plan.
    await remove(image.id, !noprune);
  } catch (error) {
    return failedRemoval(docker, image, result, removedTags, error);
  }
  return [result];
}

/** The result of a removal that failed; after a 409, the tags it removed are put back where free. */
async function failedRemoval(
  docker: DockerApi,
  image: ImageInfo,
  result: RemovalResult,
  removedTags: string[],
  error: unknown,
): Promise<[RemovalResult, unknown?]> {
  let status = statusOf(error);
  // Two deletes of one image at once (another run): Docker 20.10 may answer the loser with a 500
  // "unrecognized image ID" instead of a 404. If the image is gone now, that is what happened.
  if (status !== 404 && status !== 409 && !isConnectionError(error)) {
    const exists = await docker.request('GET', `/images/${image.id}/json`).then(
      () => true,
      (e: unknown) => statusOf(e) !== 404,
    );
    if (!exists) status = 404;
  }
  if (status === 404) return [{ ...result, status: 'gone', message: 'already removed by someone else' }];
  let message = messageOf(error);
  if (status === 409 && removedTags.length > 0) {
    const { restored, failed } = await restoreTags(docker, image.id, removedTags);
    if (restored.length > 0) result = { ...result, restored };
    if (failed.length > 0) message += `; could not put back tag(s) ${failed.join(', ')}`;
  }
  return [
    {
      ...result,
      status: status === 409 ? 'conflict' : 'error',
      message,
      connectionFailed: isConnectionError(error),
    },
    status === 409 ? undefined : error,
  ];
}

/** Runs one phase of the work under a title (a log group, with its duration recorded under `key`). */
export type Phase = <T>(title: string, key: string, fn: () => Promise<T>) => Promise<T>;

export interface Executed {
  results: RemovalResult[];
  objectResults: ObjectResult[];
  buildCacheResult?: BuildCacheResult;
  /** Why the run stopped early (the daemon went away), if it did. */
  stopped?: string;
}

/**
 * Removes the plan in the safe order: containers first (their images, networks and volumes become
 * free), then images, networks, build cache, and volumes last.
 */
export async function executePlan(
  docker: DockerApi,
  plan: Plan,
  concurrency: number,
  phase: Phase,
  log: (line: string) => void,
): Promise<Executed> {
  const stopper = new Stopper(docker);
  const removeClass = async (title: string, kind: ObjectDecision['kind']) => {
    const decisions = plan.objects.filter((o) => o.kind === kind && o.action === 'remove');
    if (decisions.length === 0) return [];
    return phase(title, `${kind}sMs`, async () => {
      const done = await removeObjects(docker, decisions, concurrency, stopper);
      log(`removed ${done.filter((r) => r.status === 'removed').length}/${decisions.length}`);
      return done;
    });
  };

  const objectResults = await removeClass('Remove containers', 'container');
  const results = await phase('Remove images', 'applyMs', async () => {
    let lastLog = 0;
    return applyPlan(docker, plan, concurrency, stopper, (n, total) => {
      // Progress every 2 s on long runs, and at the end.
      if (n === total || performance.now() - lastLog > 2000) {
        lastLog = performance.now();
        log(`removed ${n}/${total}`);
      }
    });
  });
  objectResults.push(...(await removeClass('Remove networks', 'network')));
  const cache = plan.buildCache;
  const buildCacheResult =
    cache && !stopper.reason
      ? await phase('Prune build cache', 'buildCacheMs', () => pruneBuildCache(docker, cache))
      : undefined;
  objectResults.push(...(await removeClass('Remove volumes', 'volume')));
  return { results, objectResults, buildCacheResult, stopped: stopper.reason };
}

/** What the budget is measured by during a prune: the filesystem now (undefined where not visible). */
export type Measure = () => Promise<Measured>;

export interface ExecutedBudget extends Executed {
  /** Steps of plan.budget done; fewer than planned when a measurement met the budget sooner. */
  stepsDone: number;
}

/**
 * A budgeted prune: the budget's steps one at a time, in order (stopped containers, the build cache,
 * images), checking before each whether every budget is met, by the exact estimate of what is freed so
 * far or by measuring the filesystem; then networks and volumes as usual. Never more than the plan.
 */
export async function executeBudget(
  docker: DockerApi,
  plan: Plan,
  concurrency: number,
  phase: Phase,
  log: (line: string) => void,
  measure: Measure,
): Promise<ExecutedBudget> {
  const budget = plan.budget!;
  const stopper = new Stopper(docker);
  const results: RemovalResult[] = [];
  const objectResults: ObjectResult[] = [];
  let buildCacheResult: BuildCacheResult | undefined;
  const remove = removerOf(docker, plan);
  const images = new Map(plan.images.map((d) => [d.image.id, d.image]));
  const containers = new Map(plan.objects.filter((o) => o.kind === 'container').map((o) => [o.id, o]));
  let freed = 0;
  let stepsDone = 0;
  await phase('Remove to meet the budget', 'applyMs', async () => {
    for (const step of budget.steps) {
      if (budgetMet(budget, freed, await measure())) {
        log(`budget met after ${stepsDone} removal(s)`);
        break;
      }
      if (!(await stopper.proceed())) break;
      stepsDone++;
      if (step.kind === 'container') {
        const decision = containers.get(step.id);
        if (decision) objectResults.push(...(await removeObjects(docker, [decision], 1, stopper)));
      } else if (step.kind === 'build-cache') {
        if (plan.buildCache) buildCacheResult = await pruneBuildCache(docker, plan.buildCache);
      } else {
        const image = images.get(step.id);
        if (image) {
          const [result, failure] = await remove(image);
          results.push(result);
          await stopper.record(failure);
        }
      }
      freed = step.runningTotal;
      log(
        `${stepsDone}/${budget.steps.length}: ${step.kind} ${step.name}, running total ${formatBytes(freed)}`,
      );
    }
  });
  // Steps not attempted because the daemon went away: reported like executePlan's.
  if (stopper.reason) {
    for (const step of budget.steps.slice(stepsDone)) {
      if (step.kind === 'image')
        results.push({ id: step.id, ...notAttempted(stopper), deleted: [], untagged: [] });
      if (step.kind === 'container')
        objectResults.push({ kind: 'container', id: step.id, ...notAttempted(stopper) });
    }
    stepsDone = budget.steps.length;
  }
  for (const kind of ['network', 'volume'] as const) {
    const decisions = plan.objects.filter((o) => o.kind === kind && o.action === 'remove');
    if (decisions.length === 0 || stopper.reason) continue;
    objectResults.push(
      ...(await phase(`Remove ${kind}s`, `${kind}sMs`, () =>
        removeObjects(docker, decisions, concurrency, stopper),
      )),
    );
  }
  return { results, objectResults, buildCacheResult, stopped: stopper.reason, stepsDone };
}
