// Free disk space where Docker keeps its data, when that is this machine's disk.
import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Bytes available on the filesystem holding the daemon's data root, or undefined when that cannot be
 * known from here: a remote daemon, or a socket from another machine or container whose data root is
 * not visible at the same path (then a number would be some other disk's, so none is given).
 */
export async function diskFree(host: string, rootDir: string): Promise<number | undefined> {
  // A Docker data root holds `image/` (classic store) or `containerd/` (containerd image store).
  const isDataRoot = ['image', 'containerd'].some((dir) => existsSync(join(rootDir, dir)));
  if (!host.startsWith('unix://') || !rootDir || !isDataRoot) return undefined;
  try {
    const fs = await statfs(rootDir);
    return fs.bavail * fs.bsize;
  } catch {
    return undefined;
  }
}
