// The usage state file (`<state-dir>/usage.json`): read, and written under a lock file, merged with what
// is on disk at that moment, through a temporary file renamed into place. A reader never sees half a
// file, and two runs at once both land their observations.

import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { messageOf } from './docker';
import { emptyState, parseState, recordUsage, type Observation, type UsageState } from '../policy/usage';

export const STATE_FILE = 'usage.json';
/** A lock older than this is left from a run that died (a write takes milliseconds). */
const STALE_LOCK_MS = 30_000;
const LOCK_WAIT_MS = 10_000;

export interface ReadState {
  state: UsageState;
  /** Set when the file is missing, foreign or corrupt: the run goes on without history. */
  warning?: string;
  /** A foreign file (not ours, or a newer version's) is never overwritten. */
  foreign?: boolean;
}

export async function readState(dir: string): Promise<ReadState> {
  const file = join(dir, STATE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    return {
      state: emptyState(),
      warning: missing
        ? `no usage history at ${file} yet (first run here): last use is taken from the daemon's own times`
        : `could not read the usage history ${file}: ${messageOf(error)}; last use is taken from the daemon's own times`,
    };
  }
  const parsed = parseState(text);
  if (!parsed.problem) return { state: parsed.state };
  return {
    state: parsed.state,
    foreign: parsed.problem === 'foreign',
    warning:
      `the usage history ${file} is ${parsed.problem === 'foreign' ? 'not ours' : 'corrupt'} (${parsed.why}): ` +
      `it is ignored${parsed.problem === 'foreign' ? ' and left as it is' : ' and will be replaced'}; ` +
      "last use is taken from the daemon's own times",
  };
}

/**
 * Records one run's observation: takes the lock, reads the file as it is now, records, writes a temporary
 * file and renames it over. Resolves to a warning when it could not (the run goes on).
 */
export async function writeState(dir: string, seen: Observation): Promise<string | undefined> {
  const file = join(dir, STATE_FILE);
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    return `could not create the state folder ${dir}: ${messageOf(error)}; usage was not recorded`;
  }
  const lock = await acquireLock(`${file}.lock`);
  if (typeof lock === 'string') return `${lock}; usage was not recorded this run`;
  try {
    const current = await readState(dir);
    if (current.foreign) return `${file} is not a usage history of this tool; usage was not recorded`;
    const next = recordUsage(current.state, seen);
    const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(temp, JSON.stringify(next) + '\n');
      await rename(temp, file);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      return `could not write the usage history ${file}: ${messageOf(error)}`;
    }
    return undefined;
  } finally {
    await lock.release();
  }
}

/** An exclusive lock file holding the owner's pid; a stale one (owner gone, or too old) is taken over. */
async function acquireLock(file: string): Promise<{ release(): Promise<void> } | string> {
  const token = `${process.pid} ${randomBytes(6).toString('hex')}\n`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, token);
      closeSync(fd);
      return {
        release: async () => {
          const held = await readFile(file, 'utf8').catch(() => '');
          if (held === token) await unlink(file).catch(() => undefined);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        return `could not create the lock ${file}: ${messageOf(error)}`;
      }
    }
    if (await isStale(file)) {
      await unlink(file).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline) return `the usage history is locked by another run (${file})`;
    await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 30));
  }
}

async function isStale(file: string): Promise<boolean> {
  try {
    const [text, info] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    if (Date.now() - info.mtimeMs > STALE_LOCK_MS) return true;
    const pid = Number(text.split(' ')[0]);
    if (!(pid > 0)) return false; // being written this instant
    try {
      process.kill(pid, 0);
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ESRCH';
    }
  } catch {
    return false; // gone meanwhile: the next attempt takes it
  }
}
