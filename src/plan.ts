// Deciding, as a pure function: inventory + inputs + now -> plan. Every image gets a decision and a
// reason; nothing here talks to Docker.

import { bytesFreed } from './estimate';
import { findProtection, repositoryOf, ruleMatches } from './protect';
import type { ImageDecision, ImageInfo, Inputs, Inventory, Plan } from './types';

export type Policy = Pick<Inputs, 'mode' | 'images' | 'olderThan' | 'protect' | 'keepRecent'>;

export function planRemovals(inventory: Inventory, policy: Policy, nowMs: number): Plan {
  const { images, containers } = inventory;
  const byId = new Map(images.map((image) => [image.id, image]));

  const children = new Map<string, string[]>();
  for (const image of images) {
    if (image.parentId && byId.has(image.parentId)) {
      children.set(image.parentId, [...(children.get(image.parentId) ?? []), image.id]);
    }
  }

  // Any container, running, stopped or merely created, pins its image.
  const usedBy = new Map<string, string[]>();
  for (const container of containers) {
    const name = container.names[0] ?? container.id.slice(0, 12);
    usedBy.set(container.imageId, [...(usedBy.get(container.imageId) ?? []), name]);
  }

  const cutoffMs = policy.olderThan
    ? (policy.olderThan.atMs ?? nowMs - (policy.olderThan.durationMs ?? 0))
    : undefined;
  const recent = newestPerRepository(images, policy.keepRecent);

  const decide = (image: ImageInfo): Omit<ImageDecision, 'image'> => {
    const keep = (reason: ImageDecision['reason'], detail: string) => ({
      action: 'keep' as const,
      reason,
      detail,
    });
    const users = usedBy.get(image.id);
    if (users) return keep('in-use', `used by container ${users.join(', ')}`);
    const rule = findProtection(policy.protect, image);
    if (rule) return keep('protected', `matches protect entry "${rule.entry}"`);
    // Untagged parents are not candidates of their own (Docker's prune skips them too); a tagged parent
    // is, and losing its tags is all that removing it can do while child images still need its layers.
    const kids = children.get(image.id);
    if (kids && image.repoTags.length === 0) {
      return keep(
        'parent',
        `untagged parent of ${kids.length} image(s); Docker removes it with its last child`,
      );
    }
    if (policy.images === 'none') return keep('not-selected', 'images is none');
    if (policy.images === 'dangling' && image.repoTags.length > 0) {
      return keep('tagged', 'only dangling images are candidates (images: dangling)');
    }
    const rank = recent.get(image.id);
    if (rank) return keep('keep-recent', rank);
    if (cutoffMs !== undefined && image.created * 1000 > cutoffMs) {
      return keep(
        'too-recent',
        `created after ${new Date(cutoffMs).toISOString()} (older-than ${policy.olderThan?.text})`,
      );
    }
    return { action: 'remove', reason: 'remove', detail: removalDetail(policy.images, image) };
  };

  const decisions: ImageDecision[] = images.map((image) => ({ image, ...decide(image) }));
  const removed = new Set(decisions.filter((d) => d.action === 'remove').map((d) => d.image.id));
  const protectedIds = new Set(decisions.filter((d) => d.reason === 'protected').map((d) => d.image.id));
  const { cascade, noPrune } = cascadeParents(removed, byId, children, usedBy, protectedIds);
  const goneIds = new Set([...removed, ...cascade]);
  const gone = (image: ImageInfo) => goneIds.has(image.id);
  const untagOnly = [...removed].filter((id) =>
    (children.get(id) ?? []).some((child) => !goneIds.has(child)),
  );
  for (const decision of decisions) {
    if (cascade.includes(decision.image.id)) {
      decision.action = 'remove';
      decision.detail = 'untagged parent; Docker removes it with its last child';
    } else if (untagOnly.includes(decision.image.id)) {
      decision.detail = `${decision.detail}; only its tags go: child images still need its layers`;
    }
  }

  return {
    mode: policy.mode,
    images: decisions,
    cascade,
    noPrune,
    untagOnly,
    estimatedBytes: bytesFreed(
      images.filter(gone),
      images.filter((image) => !gone(image)),
    ),
    estimateExact: images.filter(gone).every((image) => image.layerSizesExact),
    cutoffMs,
    unmatchedProtect: policy.protect
      .filter((rule) => !images.some((image) => ruleMatches(rule, image)))
      .map((rule) => rule.entry),
  };
}

function removalDetail(scope: Policy['images'], image: ImageInfo): string {
  if (image.repoTags.length === 0) return 'dangling: untagged and unused';
  return scope === 'unused' ? 'unused: no container refers to it' : 'unused';
}

/** Per repository, the `count` most recently created images, with a detail saying where they rank. */
function newestPerRepository(images: ImageInfo[], count: number): Map<string, string> {
  const ranks = new Map<string, string>();
  if (count <= 0) return ranks;
  const byRepository = new Map<string, ImageInfo[]>();
  for (const image of images) {
    for (const repository of new Set(image.repoTags.map(repositoryOf))) {
      byRepository.set(repository, [...(byRepository.get(repository) ?? []), image]);
    }
  }
  for (const [repository, members] of byRepository) {
    members
      .sort((a, b) => b.created - a.created || a.id.localeCompare(b.id))
      .slice(0, count)
      .forEach((image, i) => {
        if (!ranks.has(image.id)) ranks.set(image.id, `newest ${i + 1} of ${count} kept in ${repository}`);
      });
  }
  return ranks;
}

/**
 * Untagged parents that Docker deletes along with a child: when every child goes, no container uses
 * it and it has no references, the delete walks up to it (and on up the chain). Docker knows nothing
 * of our protection, so an image with a protected ancestor is deleted with `noprune` instead.
 */
function cascadeParents(
  removed: Set<string>,
  byId: Map<string, ImageInfo>,
  children: Map<string, string[]>,
  usedBy: Map<string, string[]>,
  protectedIds: Set<string>,
): { cascade: string[]; noPrune: string[] } {
  const parentOf = (id: string) => byId.get(byId.get(id)?.parentId ?? '');
  const hasProtectedAncestor = (id: string) => {
    for (let p = parentOf(id); p; p = parentOf(p.id)) if (protectedIds.has(p.id)) return true;
    return false;
  };
  const noPrune = [...removed].filter(hasProtectedAncestor);
  const gone = new Set(removed);
  const cascade: string[] = [];
  let frontier = [...removed].filter((id) => !noPrune.includes(id));
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const id of frontier) {
      const parent = parentOf(id);
      if (!parent || gone.has(parent.id) || usedBy.has(parent.id)) continue;
      if (parent.repoTags.length > 0 || parent.repoDigests.length > 0) continue;
      if (!(children.get(parent.id) ?? []).every((child) => gone.has(child))) continue;
      gone.add(parent.id);
      cascade.push(parent.id);
      next.push(parent.id);
    }
    frontier = next;
  }
  return { cascade, noPrune };
}
