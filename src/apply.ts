// Doing: remove exactly the planned images, never with force. A tagged image goes by deleting each of
// its tags (the last one deletes the image), an untagged one by ID. Failures are collected, not thrown.

import { isConnectionError, messageOf, statusOf, type DockerApi } from './docker';
import { mapPool } from './pool';
import type { ImageInfo, Plan, RemovalResult } from './types';

interface DeleteItem {
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
  const gone = new Set([
    ...plan.cascade,
    ...plan.images.filter((d) => d.action === 'remove').map((d) => d.image.id),
  ]);
  const depth = (image: ImageInfo) => {
    let n = 0;
    for (let p = byId.get(image.parentId); p; p = byId.get(p.parentId)) n++;
    return n;
  };
  const groups = new Map<string, ImageInfo[]>();
  for (const decision of plan.images) {
    if (decision.action !== 'remove' || plan.cascade.includes(decision.image.id)) continue;
    let root = decision.image;
    for (let p = byId.get(root.parentId); p && gone.has(p.id); p = byId.get(p.parentId)) root = p;
    groups.set(root.id, [...(groups.get(root.id) ?? []), decision.image]);
  }
  return [...groups.values()].map((group) => group.sort((a, b) => depth(b) - depth(a)));
}

export interface Applied {
  results: RemovalResult[];
  /** Set when the daemon stopped answering: the run stopped and the rest was not attempted. */
  aborted?: string;
}

export async function applyPlan(
  docker: DockerApi,
  plan: Plan,
  concurrency: number,
  onProgress: (done: number, total: number) => void = () => {},
): Promise<Applied> {
  const noPrune = new Set(plan.noPrune);
  const untagOnly = new Set(plan.untagOnly);
  const groups = deletionGroups(plan);
  const total = groups.reduce((n, g) => n + g.length, 0);
  let done = 0;
  let aborted: string | undefined;
  const perGroup = await mapPool(groups, concurrency, async (group) => {
    const results: RemovalResult[] = [];
    for (const image of group) {
      if (aborted) {
        results.push({
          id: image.id,
          status: 'error',
          message: `not attempted: ${aborted}`,
          deleted: [],
          untagged: [],
        });
        continue;
      }
      const result = await removeImage(docker, image, noPrune.has(image.id), untagOnly.has(image.id));
      results.push(result);
      onProgress(++done, total);
      // A connection that failed or timed out may be a daemon that went away: if it no longer answers
      // a ping, stop here rather than fail every remaining delete one timeout at a time.
      if (result.status === 'error' && result.connectionFailed && !aborted) {
        await docker.ping().catch((error: unknown) => {
          aborted ??= `the daemon at ${docker.host} stopped answering (${messageOf(error)})`;
        });
      }
    }
    return results;
  });
  return { results: perGroup.flat(), aborted };
}

async function removeImage(
  docker: DockerApi,
  image: ImageInfo,
  noprune: boolean,
  untagOnly: boolean,
): Promise<RemovalResult> {
  const result: RemovalResult = { id: image.id, status: 'removed', deleted: [], untagged: [] };
  const remove = async (name: string) => {
    const items = await docker.request<DeleteItem[]>('DELETE', `/images/${encodeURIComponent(name)}`, {
      noprune,
    });
    for (const item of items ?? []) {
      if (item.Deleted) result.deleted.push(item.Deleted);
      if (item.Untagged) result.untagged.push(item.Untagged);
    }
  };
  const ignoreMissing = (error: unknown) => (statusOf(error) === 404 ? undefined : Promise.reject(error));
  try {
    // Tags are removed by name, but only while they still point at this image: a build may have moved
    // `app:latest` to a new image since the inventory.
    for (const tag of untagOnly ? image.repoTags : image.repoTags.slice(1)) {
      const current = await docker
        .request<{ Id: string }>('GET', `/images/${encodeURIComponent(tag)}/json`)
        .catch(ignoreMissing);
      if (current?.Id === image.id) await remove(tag).catch(ignoreMissing);
    }
    if (untagOnly) return { ...result, status: result.untagged.length > 0 ? 'untagged' : 'gone' };
    // The last reference goes by ID: Docker deletes an image by ID when at most one tag is left, and
    // answers 409 rather than touch an image that gained a reference or a container since the plan.
    await remove(image.id);
  } catch (error) {
    const status = statusOf(error);
    if (status === 404) return { ...result, status: 'gone', message: 'already removed by someone else' };
    return {
      ...result,
      status: status === 409 ? 'conflict' : 'error',
      message: messageOf(error),
      connectionFailed: isConnectionError(error),
    };
  }
  return result;
}
