// Lock files on a real folder: taken, waited on while a live run holds them, taken over when their owner
// is gone or they are too old, refused when something else sits at their name; and the clean-up lock's
// stage: a prune that waited past lock-wait only reports.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { takeLock } from '../src/engine/lock';
import { holdCleanLock } from '../src/run';
import type { Inputs } from '../src/types';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sdp-lock-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

const OPTIONS = { waitMs: 0, staleMs: 60_000 };
/** A live process that is not this one, as another run holding a lock would be. */
const OTHER = process.ppid;

describe('takeLock', () => {
  it('takes a free lock, writes its pid, and releases only its own', async () => {
    const file = join(dir, 'a.lock');
    const first = await takeLock(file, OPTIONS);
    expect(first.kind).toBe('taken');
    expect(readFileSync(file, 'utf8')).toMatch(new RegExp(`^${process.pid} [0-9a-f]{12}\\n$`));
    expect((await takeLock(file, OPTIONS)).kind).toBe('busy');
    if (first.kind === 'taken') await first.lock.release();
    expect(existsSync(file)).toBe(false);
  });

  it('waits for a live holder up to waitMs, telling who holds it, then says busy', async () => {
    const file = join(dir, 'held.lock');
    writeFileSync(file, `${OTHER} aaaaaaaaaaaa\n`);
    const seen: (number | undefined)[] = [];
    const start = Date.now();
    const attempt = await takeLock(file, { ...OPTIONS, waitMs: 300, onHeld: (pid) => seen.push(pid) });
    expect(attempt).toEqual({ kind: 'busy', pid: OTHER });
    expect(Date.now() - start).toBeGreaterThanOrEqual(300);
    expect(seen.length).toBeGreaterThan(1);
    expect(new Set(seen)).toEqual(new Set([OTHER]));
    expect(readFileSync(file, 'utf8')).toBe(`${OTHER} aaaaaaaaaaaa\n`);
  });

  it('takes it once the holder releases it during the wait', async () => {
    const file = join(dir, 'released.lock');
    writeFileSync(file, `${OTHER} aaaaaaaaaaaa\n`);
    setTimeout(() => rmSync(file), 100);
    const attempt = await takeLock(file, { ...OPTIONS, waitMs: 5000 });
    expect(attempt.kind).toBe('taken');
  });

  it('takes over a lock whose owner is gone, or one older than staleMs', async () => {
    const gone = join(dir, 'gone.lock');
    writeFileSync(gone, `${deadPid()} aaaaaaaaaaaa\n`);
    expect((await takeLock(gone, OPTIONS)).kind).toBe('taken');
    const old = join(dir, 'old.lock');
    writeFileSync(old, `${OTHER} aaaaaaaaaaaa\n`);
    const past = new Date(Date.now() - 120_000);
    utimesSync(old, past, past);
    expect((await takeLock(old, OPTIONS)).kind).toBe('taken');
  });

  it('takes over a lock with this process’s pid that another process wrote (pid 1 in a restarted container)', async () => {
    const file = join(dir, 'mine.lock');
    writeFileSync(file, `${process.pid} aaaaaaaaaaaa\n`);
    const attempt = await takeLock(file, { ...OPTIONS, waitMs: 10_000 });
    expect(attempt.kind).toBe('taken');
    // One it does hold stays held, for this process too.
    expect((await takeLock(file, OPTIONS)).kind).toBe('busy');
  });

  it('refuses a symlink at the lock name at once, without waiting or following it', async () => {
    const target = join(dir, 'target');
    writeFileSync(target, 'precious\n');
    const file = join(dir, 'link.lock');
    symlinkSync(target, file);
    const attempt = await takeLock(file, { ...OPTIONS, waitMs: 10_000 });
    expect(attempt).toEqual({ kind: 'refused', why: 'it is a symbolic link, not a regular file' });
    expect(readFileSync(target, 'utf8')).toBe('precious\n');
  });
});

describe('holdCleanLock: one prune of a daemon at a time', () => {
  const hooks = (lines: string[]) => ({
    info: (line: string) => lines.push(line),
    warn: (line: string) => lines.push(`warning: ${line}`),
    group: <T>(_title: string, fn: () => Promise<T>) => fn(),
  });
  const inputs = (extra: Partial<Inputs>) => ({ lockWaitMs: 120_000, ...extra }) as Inputs;

  it('holds the lock for the pass and gives it back', async () => {
    const file = join(dir, 'clean.lock');
    const held = await holdCleanLock(inputs({ lockFile: file }), 'unix:///x.sock', hooks([]));
    expect(held).toMatchObject({ warnings: [] });
    expect(held.skip).toBeUndefined();
    expect(existsSync(file)).toBe(true);
    await held.lock!.release();
    expect(existsSync(file)).toBe(false);
  });

  it('skips (reports only) after lock-wait, bounded by half the time limit, and says so', async () => {
    const file = join(dir, 'clean.lock');
    writeFileSync(file, `${OTHER} aaaaaaaaaaaa\n`);
    const lines: string[] = [];
    const held = await holdCleanLock(
      inputs({ lockFile: file, lockWaitMs: 60_000, timeLimitMs: 400 }),
      'unix:///x.sock',
      hooks(lines),
    );
    expect(held.skip).toBe(true);
    expect(held.lock).toBeUndefined();
    expect(held.warnings).toEqual([
      `another clean-up of this daemon (pid ${OTHER}) held the lock ${file} for 200ms (lock-wait): ` +
        'this run removed nothing and reports what it would remove',
    ]);
    expect(lines).toEqual([
      `another clean-up of this daemon holds ${file} (pid ${OTHER}): waiting up to 200ms`,
    ]);
  });

  it('goes on without the lock, with a warning, when something else sits at its name', async () => {
    const file = join(dir, 'clean.lock');
    symlinkSync(join(dir, 'elsewhere'), file);
    const held = await holdCleanLock(inputs({ lockFile: file }), 'unix:///x.sock', hooks([]));
    expect(held).toEqual({
      warnings: [
        `the clean-up lock ${file} is refused (it is a symbolic link, not a regular file); pruning without it`,
      ],
    });
  });
});
