// Files written as root in folders other users may write to, on real files in a temporary folder: no
// planted symlink is followed, no planted FIFO hangs a run, no other user's file is read or replaced,
// nothing a foreign file holds is printed, and the command keeps its own files out of /tmp.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT, main } from '../src/cli';
import type { DockerApi } from '../src/engine/docker';
import { readOwnRegularFile, writeFileAtomic } from '../src/engine/files';
import { readState, STATE_FILE, writeState } from '../src/engine/state';
import { privateDirOf, readInputs } from '../src/policy/inputs';
import { runPass } from '../src/run';

const SECRET = 'TOPSECRET-hunter2-do-not-print';
const isRoot = process.geteuid?.() === 0;
const seen = { daemonId: 'd', images: ['a'], inUse: [], nowMs: 1 };

let dir: string;
const fifos: string[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sdp-files-test-'));
});
afterEach(() => {
  // Frees a reader that today's code leaves blocked on a FIFO (ENXIO when none is waiting).
  for (const fifo of fifos.splice(0)) {
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // no reader
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

const mkfifo = (path: string) => {
  execFileSync('mkfifo', [path]);
  fifos.push(path);
};
const secretFile = () => {
  const file = join(dir, 'secret.txt');
  writeFileSync(file, `${SECRET}\n`);
  return file;
};
/** The command's I/O with its private folder inside the test's folder. */
const cliIo = (env: Record<string, string> = {}) => {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t), env: { HOME: dir, ...env } },
  };
};
const NO_DAEMON = 'unix:///nonexistent-sdp-files/docker.sock';

describe('writeFileAtomic', () => {
  it('replaces a symlink at the name instead of writing through it, and leaves no temporary file', async () => {
    const target = secretFile();
    const file = join(dir, 'out.json');
    symlinkSync(target, file);
    await writeFileAtomic(file, 'new\n', 0o644);
    expect(readFileSync(target, 'utf8')).toBe(`${SECRET}\n`);
    expect(lstatSync(file).isFile()).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe('new\n');
    expect(statSync(file).mode & 0o777).toBe(0o644);
    expect(readdirSync(dir).sort()).toEqual(['out.json', 'secret.txt']);
  });

  it('reads back only our own regular files', async () => {
    const file = join(dir, 'own');
    writeFileSync(file, 'x');
    expect(await readOwnRegularFile(file)).toMatchObject({ kind: 'read', text: 'x' });
    expect(await readOwnRegularFile(join(dir, 'none'))).toEqual({ kind: 'missing' });
    linkSync(file, join(dir, 'second-name'));
    expect(await readOwnRegularFile(file)).toEqual({ kind: 'refused', why: 'it has 2 names (a hard link)' });
  });
});

describe('the command’s metrics file', () => {
  it('does not write through a symlink planted at the old temporary name', async () => {
    const target = secretFile();
    const metrics = join(dir, 'sdp.prom');
    symlinkSync(target, `${metrics}.${process.pid}.tmp`);
    const c = cliIo();
    expect(await main(['--docker-host', NO_DAEMON, '--metrics-file', metrics], c.io)).toBe(EXIT.unreachable);
    expect(readFileSync(target, 'utf8')).toBe(`${SECRET}\n`);
    expect(lstatSync(metrics).isFile()).toBe(true);
    expect(readFileSync(metrics, 'utf8')).toContain('safe_docker_prune_success');
  });

  it('a FIFO at the metrics file does not hang the pass', async () => {
    const metrics = join(dir, 'sdp.prom');
    mkfifo(metrics);
    const c = cliIo();
    expect(await main(['--docker-host', NO_DAEMON, '--metrics-file', metrics], c.io)).toBe(EXIT.unreachable);
    expect(lstatSync(metrics).isFile()).toBe(true);
  }, 5000);
});

describe('the JSON report', () => {
  /** A daemon that answers the ping and knows no container: the safety gate fails and the report is written. */
  const gateFails: DockerApi = {
    host: 'unix:///test/docker.sock',
    request: async () => {
      throw Object.assign(new Error('(HTTP code 404) - no such container'), { statusCode: 404 });
    },
    ping: async () => undefined,
    probe: async () => undefined,
    timeLeft: () => Infinity,
    close: () => undefined,
  };
  const hooks = {
    info: () => undefined,
    warn: () => undefined,
    group: <T>(_: string, fn: () => Promise<T>) => fn(),
  };

  it('replaces a symlink planted at the report file instead of overwriting its target', async () => {
    const target = secretFile();
    const report = join(dir, 'report.json');
    symlinkSync(target, report);
    const values: Record<string, string> = { 'report-file': report, 'critical-containers': 'db' };
    const inputs = readInputs((name) => values[name] ?? '', {});
    const outcome = await runPass(inputs, gateFails, hooks);
    expect(outcome.failures[0]).toMatch(/safety gate failed/);
    expect(readFileSync(target, 'utf8')).toBe(`${SECRET}\n`);
    expect(lstatSync(report).isFile()).toBe(true);
    expect(JSON.parse(readFileSync(report, 'utf8')).failures).toEqual(outcome.failures);
  });
});

describe('the usage history and its lock', () => {
  const file = () => join(dir, STATE_FILE);

  it('a FIFO at usage.json: the run goes on with a warning instead of hanging', async () => {
    mkfifo(file());
    const read = await readState(dir);
    expect(read.warning).toContain(file());
    expect(read.warning).toMatch(/refused unread \(it is a FIFO, not a regular file\)/);
    expect(await writeState(dir, seen)).toMatch(/refused \(it is a FIFO/);
    expect(lstatSync(file()).isFIFO()).toBe(true);
  }, 5000);

  it('a FIFO at usage.json.lock: the write gives up at once with a warning instead of hanging', async () => {
    mkfifo(`${file()}.lock`);
    const started = Date.now();
    const warning = await writeState(dir, seen);
    expect(warning).toContain(`${file()}.lock`);
    expect(warning).toMatch(/FIFO.*usage was not recorded/);
    expect(Date.now() - started).toBeLessThan(2000);
  }, 5000);

  it('a symlinked usage.json: neither the warning nor the file it points at shows the secret', async () => {
    const target = secretFile();
    symlinkSync(target, file());
    const read = await readState(dir);
    expect(read.warning).toMatch(/symbolic link/);
    expect(read.warning).not.toContain('TOPSECRET');
    const written = await writeState(dir, seen);
    expect(written).not.toContain('TOPSECRET');
    expect(readFileSync(target, 'utf8')).toBe(`${SECRET}\n`);
    expect(lstatSync(file()).isSymbolicLink()).toBe(true);
  });

  it('an unparsable usage.json of ours is called unparsable, never quoted', async () => {
    writeFileSync(file(), `${SECRET} and more`);
    const read = await readState(dir);
    expect(read.warning).toMatch(/is corrupt \(not valid JSON\)/);
    expect(read.warning).not.toContain('TOPSECRET');
  });

  (isRoot ? it : it.skip)(
    'a usage.json or lock owned by another user is refused and left alone',
    async () => {
      writeFileSync(file(), '{"format":"safe-docker-prune/usage","version":1,"daemons":{}}');
      chownSync(file(), 65534, 65534);
      const read = await readState(dir);
      expect(read.warning).toMatch(/refused unread \(it is owned by uid 65534, not by this user \(uid 0\)\)/);
      expect(await writeState(dir, seen)).toMatch(/refused/);
      expect(statSync(file()).uid).toBe(65534);
      rmSync(file());
      writeFileSync(`${file()}.lock`, `${process.pid} abc\n`);
      chownSync(`${file()}.lock`, 65534, 65534);
      expect(await writeState(dir, seen)).toMatch(/lock .* is refused \(it is owned by uid 65534/);
      expect(existsSync(file())).toBe(false);
    },
  );
});

describe('the command’s own files are not in /tmp', () => {
  it('its default report folder is private, and refused when others may write to it', async () => {
    const c = cliIo();
    expect(await main(['--docker-host', NO_DAEMON], c.io)).toBe(EXIT.unreachable);
    const folder = privateDirOf({ HOME: dir });
    expect(folder.startsWith(dir)).toBe(true);
    expect(statSync(folder).mode & 0o777).toBe(0o700);
    chmodSync(folder, 0o777);
    const d = cliIo();
    expect(await main(['--docker-host', NO_DAEMON], d.io)).toBe(EXIT.usage);
    expect(d.err.join('')).toMatch(/report-file: .* may be written by other users \(mode 777\)/);
  });

  it('a lock planted in /tmp does not stop --every; its own lock is in the private folder', async () => {
    const key = createHash('sha256').update(NO_DAEMON).digest('hex').slice(0, 16);
    const planted = join(tmpdir(), `safe-docker-prune-loop-${key}.lock`);
    writeFileSync(planted, '1\n'); // pid 1 is always alive
    try {
      const c = cliIo();
      const running = main(['--every', '1h', '--docker-host', NO_DAEMON], c.io);
      const lock = join(privateDirOf({ HOME: dir }), `loop-${key}.lock`);
      for (let i = 0; i < 100 && !c.err.join('').includes('next pass in'); i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(c.err.join('')).toContain('next pass in');
      expect(readFileSync(lock, 'utf8')).toMatch(new RegExp(`^${process.pid} [0-9a-f]{12}\n$`));
      process.emit('SIGTERM');
      expect(await running).toBe(EXIT.ok);
      expect(existsSync(lock)).toBe(false);
    } finally {
      rmSync(planted, { force: true });
    }
  });

  it('a FIFO at the loop lock is refused at once', async () => {
    const key = createHash('sha256').update(NO_DAEMON).digest('hex').slice(0, 16);
    const folder = privateDirOf({ HOME: dir });
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    mkfifo(join(folder, `loop-${key}.lock`));
    const c = cliIo();
    expect(await main(['--every', '1h', '--docker-host', NO_DAEMON], c.io)).toBe(EXIT.failed);
    expect(c.err.join('')).toMatch(/loop lock .* is refused \(it is a FIFO/);
  }, 5000);
});
