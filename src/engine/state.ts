// The usage state file (`<state-dir>/usage.json`): read, and written under a lock file, merged with what
// is on disk at that moment, through a temporary file renamed into place. A reader never sees half a
// file, and two runs at once both land their observations. The state folder may be shared with other
// users: the file and its lock are trusted only as regular files of ours (src/engine/files.ts).

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readOwnRegularFile, writeFileAtomic } from './files';
import { takeLock, type Lock } from './lock';
import { emptyState, parseState, recordUsage, type Observation, type UsageState } from '../policy/usage';
import { messageOf } from '../errors';

export const STATE_FILE = 'usage.json';
/** A lock older than this is left from a run that died (a write takes milliseconds). */
const STALE_LOCK_MS = 30_000;
const LOCK_WAIT_MS = 10_000;
const FALLBACK = "last use is taken from the daemon's own times";

export interface ReadState {
  state: UsageState;
  /** Set when the file is missing, foreign or corrupt: the run goes on without history. */
  warning?: string;
  /** A foreign file (not ours, or a newer version's, or refused unread) is never overwritten. */
  foreign?: boolean;
  /** Why the file was refused unread (a symlink, a FIFO, another user's). */
  refused?: string;
}

export async function readState(dir: string): Promise<ReadState> {
  const file = join(dir, STATE_FILE);
  let text: string;
  try {
    const read = await readOwnRegularFile(file);
    if (read.kind === 'missing') {
      return {
        state: emptyState(),
        warning: `no usage history at ${file} yet (first run here): ${FALLBACK}`,
      };
    }
    if (read.kind === 'refused') {
      return {
        state: emptyState(),
        foreign: true,
        refused: read.why,
        warning: `the usage history ${file} is refused unread (${read.why}): it is left as it is; ${FALLBACK}`,
      };
    }
    text = read.text;
  } catch (error) {
    return {
      state: emptyState(),
      warning: `could not read the usage history ${file}: ${messageOf(error)}; ${FALLBACK}`,
    };
  }
  const parsed = parseState(text);
  if (!parsed.problem) return { state: parsed.state };
  return {
    state: parsed.state,
    foreign: parsed.problem === 'foreign',
    warning:
      `the usage history ${file} is ${parsed.problem === 'foreign' ? 'not ours' : 'corrupt'} (${parsed.why}): ` +
      `it is ignored${parsed.problem === 'foreign' ? ' and left as it is' : ' and will be replaced'}; ${FALLBACK}`,
  };
}

/**
 * Records one run's observation (see updateState). Resolves to a warning when it could not (the run goes on).
 */
export async function writeState(dir: string, seen: Observation): Promise<string | undefined> {
  return (await updateState(dir, (state) => recordUsage(state, seen))).warning;
}

/**
 * Changes the file: takes the lock, reads the file as it is now, applies `change`, writes a temporary file
 * and renames it over. Resolves to the state written, or a warning when it could not (the run goes on).
 */
export async function updateState(
  dir: string,
  change: (state: UsageState) => UsageState,
): Promise<{ state?: UsageState; warning?: string }> {
  const file = join(dir, STATE_FILE);
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    return {
      warning: `could not create the state folder ${dir}: ${messageOf(error)}; usage was not recorded`,
    };
  }
  const lock = await acquireLock(`${file}.lock`);
  if (typeof lock === 'string') return { warning: `${lock}; usage was not recorded this run` };
  try {
    const current = await readState(dir);
    if (current.refused)
      return { warning: `${file} is refused (${current.refused}); usage was not recorded` };
    if (current.foreign)
      return { warning: `${file} is not a usage history of this tool; usage was not recorded` };
    const next = change(current.state);
    try {
      await writeFileAtomic(file, JSON.stringify(next) + '\n');
    } catch (error) {
      return { warning: `could not write the usage history ${file}: ${messageOf(error)}` };
    }
    return { state: next };
  } finally {
    await lock.release();
  }
}

/** The usage history's lock: waited on for LOCK_WAIT_MS, taken over after STALE_LOCK_MS (a write takes ms). */
async function acquireLock(file: string): Promise<Lock | string> {
  const attempt = await takeLock(file, { waitMs: LOCK_WAIT_MS, staleMs: STALE_LOCK_MS, pollMs: 50 });
  switch (attempt.kind) {
    case 'taken':
      return attempt.lock;
    case 'error':
      return `could not create the lock ${file}: ${attempt.message}`;
    case 'refused':
      return `the lock ${file} is refused (${attempt.why}); remove it if no run is writing`;
    case 'busy':
      return `the usage history is locked by another run (${file})`;
  }
}
