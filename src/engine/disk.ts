// Free disk space where Docker keeps its data, when that is this machine's disk.
import { existsSync, readdirSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Bytes available on the filesystem holding the daemon's data root, or undefined when that cannot be
 * known from here: a remote daemon, or a socket from another machine or container whose data root is
 * not visible at the same path (then a number would be some other disk's, so none is given).
 */
export async function diskFree(host: string, rootDir: string): Promise<number | undefined> {
  return (await diskStats(host, rootDir))?.freeBytes;
}

export interface DiskStats {
  freeBytes: number;
  totalBytes: number;
  freeInodes: number;
  totalInodes: number;
}

/** Free and total bytes and inodes of the data root's filesystem, under the same rule as diskFree. */
export async function diskStats(host: string, rootDir: string): Promise<DiskStats | undefined> {
  if (!host.startsWith('unix://') || !rootDir || !isDataRoot(rootDir)) return undefined;
  try {
    const fs = await statfs(rootDir);
    return {
      freeBytes: fs.bavail * fs.bsize,
      totalBytes: fs.blocks * fs.bsize,
      freeInodes: fs.ffree,
      totalInodes: fs.files,
    };
  } catch {
    return undefined;
  }
}

/**
 * A Docker data root holds `image/` (classic store) or `containerd/` (containerd image store); Podman's
 * storage root holds `<driver>-images/` (`overlay-images/`).
 */
function isDataRoot(rootDir: string): boolean {
  if (['image', 'containerd'].some((dir) => existsSync(join(rootDir, dir)))) return true;
  try {
    return readdirSync(rootDir).some((entry) => /^[a-z0-9]+-images$/.test(entry));
  } catch {
    return false;
  }
}
