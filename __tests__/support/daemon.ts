// A private Docker daemon for one test run (or one benchmark). Tests that prune must own their daemon:
// this never talks to the system daemon. Each daemon has its own data root, exec root, socket and its
// own containerd (dockerd starts one per exec root), so several can run side by side.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, closeSync, existsSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as path from 'node:path';
import Dockerode from 'dockerode';

export interface PrivateDaemon {
  /** `unix:///tmp/sdp-…/docker.sock`, the form the action's `docker-host` input takes. */
  host: string;
  socket: string;
  /** Everything the daemon writes lives here; removed by stop(). */
  dir: string;
  /** The daemon's stdout/stderr. */
  logFile: string;
  pid: number;
  docker: Dockerode;
  /** Stops the daemon (SIGTERM, SIGKILL after 15 s) and removes its files. Safe to call twice. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
// dockerd finds containerd, runc and docker-init on PATH.
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The dockerd binary to run: `SDP_DOCKERD`, else the first on PATH (plus the sbin dirs), else undefined. */
export function findDockerd(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), ...SYSTEM_PATH.split(':')].filter(Boolean);
  const candidates = process.env.SDP_DOCKERD
    ? [process.env.SDP_DOCKERD]
    : dirs.map((d) => path.join(d, 'dockerd'));
  return candidates.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Whether Docker-backed tests can run here (dockerd present, running as root). With
 * `SDP_REQUIRE_DOCKER=1` (CI) a missing daemon is an error instead of a reason to skip.
 */
export function dockerTestsEnabled(): boolean {
  const missing = !findDockerd()
    ? 'dockerd was not found on PATH'
    : process.getuid?.() !== 0
      ? 'a private dockerd needs root'
      : undefined;
  if (missing && process.env.SDP_REQUIRE_DOCKER === '1') {
    throw new Error(`Docker is required (SDP_REQUIRE_DOCKER=1) but ${missing}`);
  }
  return !missing;
}

/** `describe` when a private daemon can run here, else `describe.skip`. */
export function describeDocker(name: string, fn: () => void): void {
  (dockerTestsEnabled() ? describe : describe.skip)(name, fn);
}

// Daemons still running when the process exits get SIGTERM, so they unmount and stop containerd themselves.
const running = new Set<ChildProcess>();
let exitHook = false;

/**
 * Starts a private dockerd and waits until it answers `/_ping`. Returns undefined when Docker cannot run
 * here (see dockerTestsEnabled), so a test file can skip.
 */
export async function startDaemon(name = 'd'): Promise<PrivateDaemon | undefined> {
  if (!dockerTestsEnabled()) return undefined;
  // Short paths: a unix socket path must stay under ~108 bytes.
  const dir = await mkdtemp(`/tmp/sdp-${name.replace(/[^\w-]/g, '').slice(0, 12)}-`);
  const socket = path.join(dir, 'docker.sock');
  const logFile = path.join(dir, 'dockerd.log');
  // An empty config file keeps the host's /etc/docker/daemon.json out of the picture.
  await writeFile(path.join(dir, 'daemon.json'), '{}\n');
  const args = [
    ...['--config-file', path.join(dir, 'daemon.json')],
    ...['--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec')],
    ...['--pidfile', path.join(dir, 'docker.pid'), '-H', `unix://${socket}`],
    ...['--bridge=none', '--iptables=false', '--ip-masq=false', '--ip6tables=false'],
    // Containers still running at shutdown get 2 s, not 10 (busybox as PID 1 ignores SIGTERM).
    '--shutdown-timeout=2',
    // dockerd picks overlay2 where it works (vfs otherwise); SDP_STORAGE_DRIVER pins one.
    ...(process.env.SDP_STORAGE_DRIVER ? ['--storage-driver', process.env.SDP_STORAGE_DRIVER] : []),
  ];
  const log = openSync(logFile, 'a');
  const child = spawn(findDockerd()!, args, {
    stdio: ['ignore', log, log],
    env: { ...process.env, PATH: `${process.env.PATH ?? ''}:${SYSTEM_PATH}` },
  });
  closeSync(log);
  child.unref();
  if (!exitHook) process.once('exit', () => running.forEach((c) => c.kill('SIGTERM')));
  exitHook = true;
  running.add(child);
  // 'error' (a failed spawn) comes instead of 'exit'.
  const exited = new Promise<void>((resolve) => child.once('exit', resolve).once('error', resolve));
  void exited.then(() => running.delete(child));

  let stopped: Promise<void> | undefined;
  const docker = new Dockerode({ socketPath: socket });
  const daemon: PrivateDaemon = {
    host: `unix://${socket}`,
    socket,
    dir,
    logFile,
    pid: child.pid ?? -1,
    docker,
    stop: () => (stopped ??= stop(daemon, child, exited)),
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
      const tail = await logTail(logFile);
      await daemon.stop();
      throw new Error(`dockerd exited during start-up (${child.exitCode ?? child.signalCode}):\n${tail}`);
    }
    if (await ping(socket)) return daemon;
    if (Date.now() > deadline) {
      const tail = await logTail(logFile);
      await daemon.stop();
      throw new Error(`dockerd did not answer /_ping within ${START_TIMEOUT_MS / 1000} s:\n${tail}`);
    }
    await sleep(100);
  }
}

async function stop(daemon: PrivateDaemon, child: ChildProcess, exited: Promise<void>): Promise<void> {
  let bridges: string[] = [];
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    // Kill running containers first: a daemon shutdown would give each its stop timeout.
    await killContainers(daemon.docker).catch(() => undefined);
    bridges = await bridgeInterfaces(daemon.docker).catch(() => []);
    child.kill('SIGTERM');
    if (!(await within(exited, STOP_TIMEOUT_MS))) {
      child.kill('SIGKILL');
      await exited;
    }
  }
  // A clean exit stops containerd and unmounts the layers. After SIGKILL or a crash, containerd, shims
  // and container processes may be left over: end those this daemon started (see leftoverPids).
  if (child.exitCode !== 0) {
    for (const pid of leftoverPids(daemon.dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  // dockerd leaves the Linux bridges of user-defined networks behind when it stops; on a host that runs
  // many private daemons they would use up Docker's default address pools ("could not find an available,
  // non-overlapping IPv4 address pool").
  for (const bridge of bridges) spawnSync('ip', ['link', 'delete', bridge], { stdio: 'ignore' });
  await removeDir(daemon.dir);
}

/** The host interfaces of the daemon's bridge networks (`br-<network ID>` unless named explicitly). */
async function bridgeInterfaces(docker: Dockerode): Promise<string[]> {
  const networks = await docker.listNetworks({ filters: { driver: ['bridge'] } });
  return networks
    .filter((n) => !['bridge', 'host', 'none'].includes(n.Name))
    .map((n) => n.Options?.['com.docker.network.bridge.name'] ?? `br-${n.Id.slice(0, 12)}`);
}

async function killContainers(docker: Dockerode): Promise<void> {
  const list = await docker.listContainers({ filters: { status: ['running'] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).kill()));
}

/**
 * Processes this daemon left: those whose command line names its dir (containerd, shims) and container
 * processes (`init.pid` files in the exec root) whose parent is one of those shims. Checking command
 * lines keeps a stale pid file or a reused pid from naming someone else's process.
 */
function leftoverPids(dir: string): number[] {
  const read = (file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return '';
    }
  };
  const ours = (pid: number) => read(`/proc/${pid}/cmdline`).includes(`${dir}/`);
  const parent = (pid: number) => Number(/^PPid:\s*(\d+)/m.exec(read(`/proc/${pid}/status`))?.[1]);
  const pids = readdirSync('/proc')
    .map(Number)
    .filter((pid) => pid > 1 && pid !== process.pid && ours(pid));
  const walk = (at: string, depth: number): void => {
    for (const entry of depth < 8 && existsSync(at) ? readdirSync(at, { withFileTypes: true }) : []) {
      const file = path.join(at, entry.name);
      if (entry.isDirectory()) walk(file, depth + 1);
      else if (entry.name === 'init.pid') {
        const pid = Number(read(file).trim());
        if (pid > 1 && pids.includes(parent(pid))) pids.push(pid);
      }
    }
  };
  walk(path.join(dir, 'exec'), 0);
  return pids;
}

/** Removes the daemon's dir, unmounting first whatever is still mounted below it (deepest first). */
async function removeDir(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((mount): mount is string => !!mount && mount.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const mount of mounts) spawnSync('umount', ['-l', mount], { stdio: 'ignore' });
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

async function logTail(file: string, lines = 30): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether `promise` settles within `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
