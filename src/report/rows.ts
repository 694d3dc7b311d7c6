// Rows: each image's and each other object's final state, the plan's decision combined with what the
// daemon answered, and the images grouped by repository.

import { pushTo } from '../collections';
import { uniqueBytes } from '../policy/estimate';
import { displayRepository, repositoryOf } from '../policy/protect';
import type {
  ImageDecision,
  ImageInfo,
  ImageReason,
  ObjectDecision,
  ObjectResult,
  Plan,
  RemovalResult,
} from '../types';

/** `untagged`: a parent image lost its tags but stays for the child images built on it. */
export type FinalState = 'removed' | 'untagged' | 'would-remove' | 'kept' | 'gone' | 'failed';

export interface ImageRow {
  image: ImageInfo;
  state: FinalState;
  reason: ImageReason;
  detail: string;
  /** What the daemon said, for conflicts and failures. */
  message?: string;
  /** A runner-built action image (a class of its own). */
  runnerImage?: boolean;
  /** Bytes no other image shares: what removing this image alone frees (uniqueBytes). */
  uniqueBytes: number;
}

/** The states of an image that goes (or would go): removed, or its tags removed. */
const GOING: ReadonlySet<FinalState> = new Set(['removed', 'would-remove', 'untagged']);

/** Whether the image goes: removed, untagged, or would be removed. */
export const isGoing = (row: Pick<ImageRow, 'state'>): boolean => GOING.has(row.state);

/** Each image's final state: the plan's decision combined with what the daemon answered. */
export function imageRows(plan: Plan, results?: RemovalResult[]): ImageRow[] {
  const byId = new Map((results ?? []).map((r) => [r.id, r]));
  const deleted = new Set((results ?? []).flatMap((r) => r.deleted));
  const cascade = new Set(plan.cascade);
  const unique = uniqueBytes(plan.images.map((d) => d.image));
  return plan.images.map((d: ImageDecision): ImageRow => {
    const row = {
      image: d.image,
      uniqueBytes: unique.get(d.image.id) ?? 0,
      reason: d.reason,
      detail: d.detail,
      ...(d.runnerImage ? { runnerImage: true } : {}),
    };
    if (d.action === 'keep') return { ...row, state: 'kept' };
    if (!results) return { ...row, state: 'would-remove' };
    if (cascade.has(d.image.id)) {
      return deleted.has(d.image.id)
        ? { ...row, state: 'removed' }
        : {
            ...row,
            state: 'kept',
            detail: 'untagged parent that Docker kept (another child or reference remains)',
          };
    }
    const result = byId.get(d.image.id);
    switch (result?.status) {
      case 'removed':
        return { ...row, state: 'removed' };
      case 'untagged':
        return { ...row, state: 'untagged' };
      case 'gone':
        return { ...row, state: 'gone', message: result.message };
      case 'conflict':
        // A container (or a reference) appeared since the plan: the daemon refused, the image stays.
        return {
          ...row,
          state: 'kept',
          reason: 'in-use',
          detail: 'in use since the plan',
          message: result.message,
        };
      case 'error':
        return { ...row, state: 'failed', message: result.message };
      default:
        return { ...row, state: 'failed', message: 'not attempted' };
    }
  });
}

export interface ObjectRow {
  decision: ObjectDecision;
  state: FinalState;
  message?: string;
}

/** Each container, network and volume: its decision combined with what the daemon answered. */
export function objectRows(plan: Plan, results?: ObjectResult[]): ObjectRow[] {
  const byKey = new Map((results ?? []).map((r) => [`${r.kind}/${r.id}`, r]));
  return plan.objects.map((decision): ObjectRow => {
    if (decision.action === 'keep') return { decision, state: 'kept' };
    if (!results) return { decision, state: 'would-remove' };
    const result = byKey.get(`${decision.kind}/${decision.id}`);
    switch (result?.status) {
      case 'removed':
        return { decision, state: 'removed' };
      case 'gone':
        return { decision, state: 'gone', message: result.message };
      case 'conflict':
        return { decision: { ...decision, reason: 'in-use' }, state: 'kept', message: result.message };
      case 'error':
        return { decision, state: 'failed', message: result.message };
      default:
        return { decision, state: 'failed', message: 'not attempted' };
    }
  });
}

/** Repository an image is listed under: that of its first tag as people write it, or `<untagged>`. */
export function repositoryKey(image: ImageInfo): string {
  if (image.repoTags.length === 0) return '<untagged>';
  return displayRepository(repositoryOf(image.repoTags[0]));
}

export function groupByRepository(rows: ImageRow[]): [string, ImageRow[]][] {
  const groups = new Map<string, ImageRow[]>();
  for (const row of rows) {
    const key = repositoryKey(row.image);
    pushTo(groups, key, row);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b));
}
