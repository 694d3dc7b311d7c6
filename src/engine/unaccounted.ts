// Space under the data root that the daemon does not account for: the filesystem's used bytes there beside
// the daemon's own figures (layers, containers' writable layers, volumes, build cache). The rest is logs,
// orphaned layers, the daemon's databases and files others put there: reported, never deleted.
//
// Where the data root is a filesystem of its own (a mount point), its used bytes are the filesystem's
// (statfs, no permission needed). Elsewhere the folder is walked, as `du -sx` does (allocated blocks, each
// hard-linked file once, not crossing into other filesystems), within a bound of time and entries: the
// runner's account cannot read the data root, and a huge one is not walked whole on every run.

import { lstatSync, opendirSync, statSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Usage } from '../types';

export interface UsedUnder {
  path: string;
  /** `filesystem`: the data root is a filesystem of its own; `walk`: its files were summed. */
  method: 'filesystem' | 'walk';
  usedBytes: number;
  /** False when the walk stopped at its bound: `usedBytes` is then a lower bound. */
  complete: boolean;
}

export interface Unaccounted extends UsedUnder {
  /** The daemon's own figures, summed. */
  accountedBytes: number;
  /** usedBytes − accountedBytes (negative: the daemon counts more than the disk holds, e.g. shared layers). */
  unaccountedBytes: number;
}

/** Why it could not be measured. */
export interface NotMeasured {
  path: string;
  why: string;
}

const WALK_LIMIT = { ms: 2000, entries: 500_000 };

/**
 * What the filesystem uses under `path`, or why it cannot be known from here. A folder that is not a
 * filesystem of its own is walked only when `walk` is set (a run with a budget, whose disk matters).
 */
export async function usedUnder(
  path: string,
  { walk: mayWalk, limit = WALK_LIMIT }: { walk: boolean; limit?: typeof WALK_LIMIT },
): Promise<UsedUnder | NotMeasured> {
  try {
    if (isMountPoint(path)) {
      const fs = await statfs(path);
      return { path, method: 'filesystem', usedBytes: (fs.blocks - fs.bfree) * fs.bsize, complete: true };
    }
    if (!mayWalk) {
      return {
        path,
        why: 'it shares its filesystem with other files, and its files are summed only in a run with a budget',
      };
    }
    return { path, method: 'walk', ...walk(path, limit) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return {
      path,
      why:
        code === 'EACCES' || code === 'EPERM'
          ? 'this account cannot read the data root (run as root to measure it)'
          : `it could not be read (${code ?? 'error'})`,
    };
  }
}

/** The daemon's figures beside what the disk holds. */
export function unaccountedOf(used: UsedUnder, usage: Usage): Unaccounted {
  const accountedBytes = usage.layers + usage.containers + usage.volumes + usage.buildCache;
  return { ...used, accountedBytes, unaccountedBytes: used.usedBytes - accountedBytes };
}

function isMountPoint(path: string): boolean {
  const parent = dirname(path);
  return parent === path || statSync(path).dev !== statSync(parent).dev;
}

/** `du -sx`: allocated bytes of everything under `root` on its filesystem, hard links once, bounded. */
function walk(
  root: string,
  limit: { ms: number; entries: number },
): { usedBytes: number; complete: boolean } {
  const deadline = Date.now() + limit.ms;
  const top = lstatSync(root);
  const seen = new Set<string>();
  let usedBytes = top.blocks * 512;
  let entries = 0;
  let complete = true;
  const folders = [root];
  while (folders.length > 0) {
    const folder = folders.pop()!;
    let dir;
    try {
      dir = opendirSync(folder);
    } catch (error) {
      if (folder === root) throw error;
      complete = false; // an unreadable folder is left out, as du reports and goes on: a lower bound
      continue;
    }
    try {
      for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) {
        if (++entries > limit.entries || (entries % 1024 === 0 && Date.now() > deadline)) {
          return { usedBytes, complete: false };
        }
        const path = join(folder, entry.name);
        const s = lstatSync(path, { throwIfNoEntry: false });
        if (!s || s.dev !== top.dev) continue;
        if (s.nlink > 1 && !s.isDirectory()) {
          const key = `${s.ino}`;
          if (seen.has(key)) continue;
          seen.add(key);
        }
        usedBytes += s.blocks * 512;
        if (s.isDirectory()) folders.push(path);
      }
    } finally {
      dir.closeSync();
    }
  }
  return { usedBytes, complete };
}
