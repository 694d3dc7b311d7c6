// Files the tool writes and reads back, often as root, in folders other users may write to (/tmp, a
// runner's tool cache, a textfile collector's folder). One set of primitives for the state file, its
// lock, the loop lock, the metrics file and the JSON report, so none follows a planted symlink, blocks
// on a planted FIFO or reads another user's file.

import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const { O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_WRONLY } = constants;
/** Create-only, never through a symlink: a name someone planted makes the open fail instead. */
const CREATE_NEW = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
/** O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer. */
const READ_NO_FOLLOW = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;

const euid = () => process.geteuid?.() ?? -1;

/**
 * Writes `text` to a new file with a random name in `file`'s folder, created exclusively with mode
 * 0600, then gives it `mode` and renames it over `file`. A reader never sees half a file; a symlink at
 * `file` is replaced, not followed; no name in the folder can be planted in advance.
 */
export async function writeFileAtomic(file: string, text: string, mode = 0o600): Promise<void> {
  const { handle, temp } = await createTemp(file);
  try {
    try {
      await handle.writeFile(text);
      await handle.chmod(mode);
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

async function createTemp(file: string): Promise<{ handle: FileHandle; temp: string }> {
  for (let attempt = 0; ; attempt++) {
    const temp = join(dirname(file), `.${basename(file)}.${randomBytes(8).toString('hex')}.tmp`);
    try {
      return { handle: await open(temp, CREATE_NEW, 0o600), temp };
    } catch (error) {
      // 64 random bits: a clash is someone guessing, and a few tries outlast any guess.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 4) throw error;
    }
  }
}

/** Creates `file` holding `text` unless anything (a file, a symlink, a FIFO) is there: false then. */
export async function createExclusive(file: string, text: string): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(file, CREATE_NEW, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    await handle.writeFile(text);
  } finally {
    await handle.close();
  }
  return true;
}

export type OwnFile =
  | { kind: 'read'; text: string; mtimeMs: number }
  | { kind: 'missing' }
  /** `why` names what the file is, never what it holds. */
  | { kind: 'refused'; why: string };

/**
 * Reads `file` only if it is a regular file with one name, owned by the user this runs as. Anything else
 * (a symlink, a FIFO, a device, another user's file, a hard link to one) is refused unread: a planted
 * name cannot hang the run, nor pass another file's content off as ours.
 */
export async function readOwnRegularFile(file: string): Promise<OwnFile> {
  try {
    const before = notOwnRegular(await lstat(file));
    if (before) return { kind: 'refused', why: before };
    const handle = await open(file, READ_NO_FOLLOW);
    try {
      // The name may have been swapped since lstat: judge what was actually opened.
      const info = await handle.stat();
      const opened = notOwnRegular(info);
      if (opened) return { kind: 'refused', why: opened };
      return { kind: 'read', text: await handle.readFile('utf8'), mtimeMs: info.mtimeMs };
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'missing' };
    if (code === 'ELOOP') return { kind: 'refused', why: 'it is a symbolic link' };
    throw error;
  }
}

interface FileInfo {
  uid: number;
  nlink: number;
  mode: number;
  isFile(): boolean;
  isSymbolicLink(): boolean;
  isDirectory(): boolean;
  isFIFO(): boolean;
}

/** Why a file is not a regular file of ours, or undefined when it is. */
function notOwnRegular(info: FileInfo): string | undefined {
  if (!info.isFile()) return `it is ${kindOf(info)}, not a regular file`;
  if (info.uid !== euid()) return `it is owned by uid ${info.uid}, not by this user (uid ${euid()})`;
  if (info.nlink > 1) return `it has ${info.nlink} names (a hard link)`;
  return undefined;
}

function kindOf(info: FileInfo): string {
  if (info.isSymbolicLink()) return 'a symbolic link';
  if (info.isDirectory()) return 'a folder';
  if (info.isFIFO()) return 'a FIFO';
  return 'a special file';
}

/**
 * Creates `dir` (mode 0700) unless it exists, and checks it is a folder of this user's that no one else
 * may write to. Resolves to why not, or undefined when it is private.
 */
export async function privateDir(dir: string): Promise<string | undefined> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const info = await lstat(dir);
    if (!info.isDirectory()) return `${dir} is ${kindOf(info)}, not a folder`;
    if (info.uid !== euid()) return `${dir} is owned by uid ${info.uid}, not by this user (uid ${euid()})`;
    if ((info.mode & 0o022) !== 0) {
      return `${dir} may be written by other users (mode ${(info.mode & 0o777).toString(8)}); make it 0700`;
    }
    return undefined;
  } catch (error) {
    return `${dir} could not be created: ${(error as Error).message}`;
  }
}
