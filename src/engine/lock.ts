// Lock files: an exclusive file holding the owner's pid and a random token, taken over when stale (its
// owner gone, or older than a bound), waited on up to a bound. Used for the usage history's writes and
// for the clean-up lock that keeps two prunes of one daemon (job hooks, a schedule, a loop) from running
// at once. Anything at the lock's name that is not a regular file of ours is refused, never waited on.

import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { createExclusive, readOwnRegularFile } from './files';
import { messageOf } from '../errors';

export interface Lock {
  release(): Promise<void>;
}

export type LockAttempt =
  | { kind: 'taken'; lock: Lock }
  /** Another live run held it for the whole wait; `pid` is its owner's when it could be read. */
  | { kind: 'busy'; pid?: number }
  /** Not a regular file of ours at the lock's name: never waited on. */
  | { kind: 'refused'; why: string }
  | { kind: 'error'; message: string };

export interface LockOptions {
  /** How long to wait for a held lock; 0: try once. */
  waitMs: number;
  /** A lock older than this is left from a run that died, whatever its pid says. */
  staleMs: number;
  /** Poll interval's upper bound (it starts at 20 ms and doubles). */
  pollMs?: number;
  /** Called at every poll while another live run holds the lock, with its pid when readable. */
  onHeld?: (pid: number | undefined) => void;
}

/**
 * This process's mark, the first half of every token it writes: a lock with our pid but another mark is an
 * earlier process's that had the same pid (pid 1 in a restarted container, whose /tmp survives).
 */
const MARK = randomBytes(3).toString('hex');

export async function takeLock(file: string, options: LockOptions): Promise<LockAttempt> {
  const token = `${process.pid} ${MARK}${randomBytes(3).toString('hex')}\n`;
  const deadline = Date.now() + options.waitMs;
  let pause = 20;
  let pid: number | undefined;
  for (;;) {
    try {
      if (await createExclusive(file, token))
        return { kind: 'taken', lock: { release: () => release(file, token) } };
    } catch (error) {
      return { kind: 'error', message: messageOf(error) };
    }
    // An unreadable lock (read error) counts as held: waited on until the deadline.
    const found = await readOwnRegularFile(file).catch(() => undefined);
    if (found?.kind === 'refused') return { kind: 'refused', why: found.why };
    if (found?.kind === 'missing') continue; // released meanwhile: take it
    if (found?.kind === 'read') {
      if (isStale(found.text, found.mtimeMs, options.staleMs)) {
        await unlink(file).catch(() => undefined);
        continue;
      }
      pid = Number(found.text.split(' ')[0]) || undefined;
    }
    options.onHeld?.(pid);
    if (Date.now() >= deadline) return { kind: 'busy', pid };
    await new Promise((resolve) => setTimeout(resolve, pause + Math.random() * pause));
    pause = Math.min(pause * 2, options.pollMs ?? 1000);
  }
}

async function release(file: string, token: string): Promise<void> {
  const found = await readOwnRegularFile(file).catch(() => undefined);
  if (found?.kind === 'read' && found.text === token) await unlink(file).catch(() => undefined);
}

/**
 * Left by a run that died: older than `staleMs`, or its pid is gone, or its pid is ours but not its mark (an
 * earlier process with the same pid).
 */
function isStale(text: string, mtimeMs: number, staleMs: number): boolean {
  if (Date.now() - mtimeMs > staleMs) return true;
  const pid = Number(text.split(' ')[0]);
  if (!(pid > 0)) return false; // being written this instant
  // Judged only when whole (pid, token, newline): a file being written this instant is not judged yet.
  if (pid === process.pid) return /^\d+ [0-9a-f]{12}\n$/.test(text) && !text.startsWith(`${pid} ${MARK}`);
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
