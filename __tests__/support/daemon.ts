// A private container engine for one test run (or one benchmark). Tests that prune must own their daemon:
// this never talks to the system daemon. Each daemon has its own data root, exec root, socket and its
// own containerd (dockerd starts one per exec root), so several can run side by side.
//
// Which engine: env SDP_ENGINE (default docker20), one of ENGINES below. The newer Dockers are unpacked
// into a cache by scripts/engines.sh (Docker 29 from the shared folder's archive, beside Debian sid's
// containerd and tini); Podman 5 runs from a Debian sid root in that cache, through chroot; Docker 20.10
// and Podman 4.3 are the system's (Debian 12) packages.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  constants,
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readdirSync,
  writeFileSync,
} from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, rmdir, symlink, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { homedir } from 'node:os';
import * as path from 'node:path';
import Dockerode from 'dockerode';
import { repoRoot } from './action';

/** Where a daemon keeps its images: Docker's classic layer store, the containerd image store, or Podman's. */
export type ImageStore = 'classic' | 'containerd' | 'podman';

export interface EngineSpec {
  kind: 'docker' | 'podman';
  /**
   * A folder of the engine cache (scripts/engines.sh), or undefined for the system's binaries. For
   * `podman5` the folder holds a Debian sid root (`root/`) that podman runs in through chroot.
   */
  cached?: 'docker26' | 'docker-sid' | 'docker29' | 'podman5';
  /**
   * The `features` of dockerd's daemon.json, when not just the image store's: Docker 29 needs
   * `time-namespaces: false` with bookworm's runc, and picks the containerd store unless told not to.
   */
  features?: Record<string, boolean>;
  imageStore: ImageStore;
  /** Serve the API on tcp://127.0.0.1:PORT with mutual TLS instead of a unix socket. */
  tls?: boolean;
  /** Whether containers can be started (Podman 4.3 here can only create them). */
  canRunContainers: boolean;
  /** The legacy builder (`POST /build?version=1`) and the BuildKit builder (`docker build`) work. */
  legacyBuild: boolean;
  buildKit: boolean;
}

/** Every engine the tests can run against; the first is the default. */
export const ENGINES = {
  /** Debian 12's docker.io 20.10 (API 1.41), classic store: what CI has always run. */
  docker20: {
    kind: 'docker',
    imageStore: 'classic',
    canRunContainers: true,
    legacyBuild: true,
    buildKit: true,
  },
  /** The same daemon on tcp://127.0.0.1:PORT with --tlsverify (client certificates), no unix socket. */
  'docker20-tls': {
    kind: 'docker',
    imageStore: 'classic',
    tls: true,
    canRunContainers: true,
    legacyBuild: true,
    buildKit: true,
  },
  /** Debian 13's docker.io 26.1 (API 1.45), classic store. */
  docker26: {
    kind: 'docker',
    cached: 'docker26',
    imageStore: 'classic',
    canRunContainers: true,
    legacyBuild: true,
    buildKit: true,
  },
  /** Docker 26.1 with the containerd image store. */
  'docker26-containerd': {
    kind: 'docker',
    cached: 'docker26',
    imageStore: 'containerd',
    canRunContainers: true,
    legacyBuild: true,
    buildKit: true,
  },
  /** Debian unstable's docker.io, whatever version the cache holds (28.5, API 1.51, when fetched), classic store. */
  'docker-sid': {
    kind: 'docker',
    cached: 'docker-sid',
    imageStore: 'classic',
    canRunContainers: true,
    legacyBuild: true,
    buildKit: true,
  },
  /** sid's Docker with the containerd image store (the default of Docker 29 on new installs). */
  'docker-sid-containerd': {
    kind: 'docker',
    cached: 'docker-sid',
    imageStore: 'containerd',
    canRunContainers: true,
    legacyBuild: true,
    buildKit: true,
  },
  /**
   * Docker Engine 29.7.2 (API 1.55), built from moby's tag (the shared folder's engines/), classic store:
   * a Docker 29 upgraded in place keeps its overlay2 images. Debian 12's runc (1.1) cannot make the time
   * namespace Docker 29 asks for by default.
   */
  docker29: {
    kind: 'docker',
    cached: 'docker29',
    imageStore: 'classic',
    features: { 'time-namespaces': false, 'containerd-snapshotter': false },
    canRunContainers: true,
    legacyBuild: true,
    buildKit: true,
  },
  /** Docker 29.7.2 as a fresh install runs it: the containerd image store, its default (nothing set). */
  'docker29-containerd': {
    kind: 'docker',
    cached: 'docker29',
    imageStore: 'containerd',
    features: { 'time-namespaces': false },
    canRunContainers: true,
    legacyBuild: true,
    buildKit: true,
  },
  /** Debian 12's Podman 4.3 serving the Docker-compatible API (`podman system service`). */
  podman: {
    kind: 'podman',
    imageStore: 'podman',
    canRunContainers: false,
    legacyBuild: false,
    buildKit: false,
  },
  /**
   * Debian unstable's Podman (5.8) from a sid root in the engine cache, through chroot (it needs glibc
   * 2.38). It cannot start containers here either: crun refuses this host's hybrid cgroups ("cgroups in
   * hybrid mode not supported"); `create` works.
   */
  podman5: {
    kind: 'podman',
    cached: 'podman5',
    imageStore: 'podman',
    canRunContainers: false,
    legacyBuild: false,
    buildKit: false,
  },
} as const satisfies Record<string, EngineSpec>;

export type EngineName = keyof typeof ENGINES;

/**
 * What a test may need of the engine it runs on. A test file (or test) that needs one the engine lacks is
 * skipped, with the reason in its name (see describeDocker).
 */
export type Feature =
  /** `daemon.socket`: a unix socket to put a fault proxy in front of. */
  | 'unix-socket'
  /** Containers can be started (running and exited containers, healthchecks). */
  | 'run-containers'
  /** Docker's classic image store (image IDs, layer sizes and untagged parents as on Docker 20.10–28). */
  | 'classic-store'
  /** The legacy builder, which leaves untagged parent images (fleet.ts' buildLegacy). */
  | 'legacy-build'
  /** `docker build` with BuildKit (build cache records). */
  | 'buildkit'
  /** A Docker daemon (not Podman's compatible API). */
  | 'docker'
  /** Podman's Docker-compatible API (its store is containers/storage). */
  | 'podman';

export function engineHas(engine: EngineName, feature: Feature): boolean {
  const spec: EngineSpec = ENGINES[engine];
  switch (feature) {
    case 'unix-socket':
      return !spec.tls;
    case 'run-containers':
      return spec.canRunContainers;
    case 'classic-store':
      return spec.imageStore === 'classic';
    case 'legacy-build':
      return spec.legacyBuild;
    case 'buildkit':
      return spec.buildKit;
    case 'docker':
      return spec.kind === 'docker';
    case 'podman':
      return spec.kind === 'podman';
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface PrivateDaemon {
  engine: EngineName;
  imageStore: ImageStore;
  canRunContainers: boolean;
  /** The daemon's own version (`docker version`'s Server.Version) and API version. */
  version: string;
  apiVersion: string;
  /**
   * The form the action's `docker-host` input takes: `unix:///tmp/sdp-…/docker.sock`, or
   * `tcp://127.0.0.1:PORT` for a TLS engine (then `env` holds the TLS variables the client needs).
   */
  host: string;
  /** The unix socket, when the engine serves one (undefined for TLS engines). */
  socket: string | undefined;
  /**
   * What a client (the action, a docker CLI) needs in its environment besides the host: for TLS engines
   * `DOCKER_TLS_VERIFY=1` and `DOCKER_CERT_PATH` (ca.pem, cert.pem, key.pem); empty otherwise.
   * runAction adds it by itself when given this daemon's host.
   */
  env: Record<string, string>;
  /** Everything the daemon writes lives here; removed by stop(). */
  dir: string;
  /** Where the engine keeps images, containers and volumes (below dir). */
  dataRoot: string;
  /** The daemon's stdout/stderr. */
  logFile: string;
  pid: number;
  docker: Dockerode;
  /**
   * Runs this engine's own CLI against this daemon: the engine's `docker` binary with DOCKER_HOST (and
   * TLS) set, or for Podman `podman` on the same storage (`podman --root … image prune -a -f`).
   */
  cli(args: string[], opts?: { env?: Record<string, string>; timeoutMs?: number }): Promise<CliResult>;
  /** Stops the daemon (SIGTERM, SIGKILL after 15 s) and removes its files. Safe to call twice. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
// dockerd finds containerd, runc and docker-init on PATH.
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/**
 * Bookworm's runc. The newer engines are unpacked from trixie/sid, whose runc needs glibc 2.38 (Debian 12
 * has 2.36): they run with this one, first on PATH (containerd's shim finds runc there).
 */
const SYSTEM_RUNC = '/usr/sbin/runc';
/** Docker 20.10's own CLI; /usr/local/bin/docker on these machines is a different, newer client. */
const SYSTEM_DOCKER_CLI = '/usr/bin/docker';

/** The engine the tests run against: SDP_ENGINE, default docker20. */
export function currentEngine(): EngineName {
  const name = process.env.SDP_ENGINE || 'docker20';
  if (!(name in ENGINES)) {
    throw new Error(`SDP_ENGINE=${name} is not an engine; use one of ${Object.keys(ENGINES).join(', ')}`);
  }
  return name as EngineName;
}

/** scripts/engines.sh's cache folder. */
export function engineCache(): string {
  return (
    process.env.SDP_ENGINE_CACHE ??
    path.join(process.env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'safe-docker-prune', 'engines')
  );
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(binary: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), ...SYSTEM_PATH.split(':')].filter(Boolean);
  return dirs.map((d) => path.join(d, binary)).find(executable);
}

/** The system's dockerd: `SDP_DOCKERD`, else the first on PATH (plus the sbin dirs), else undefined. */
export function findDockerd(): string | undefined {
  if (process.env.SDP_DOCKERD)
    return executable(process.env.SDP_DOCKERD) ? process.env.SDP_DOCKERD : undefined;
  return onPath('dockerd');
}

/** The shared folder (CI puts it beside the clone): SDP_SHARED, else `<repo>/../shared`. */
export function sharedFolder(): string {
  return process.env.SDP_SHARED || path.join(repoRoot(), '..', 'shared');
}

interface EngineBinaries {
  daemon: string;
  cli: string;
  folder?: string;
  version?: string;
  /** A root to run daemon and CLI in through chroot (`chroot ROOT podman …`): podman5. */
  root?: string;
}

/** Why a cached engine's folder is not there: for docker29, a missing shared folder says so. */
function notFetched(cached: NonNullable<EngineSpec['cached']>, folder: string): string {
  if (cached === 'docker29' && !existsSync(sharedFolder())) {
    return (
      `the shared folder ${sharedFolder()} (SDP_SHARED, else ../shared beside the repository) is absent: ` +
      `Docker 29.7.2 comes from its engines/docker-29.7.2.tar.xz`
    );
  }
  return `${folder} is not fetched yet (run scripts/engines.sh ${cached})`;
}

/** The binaries an engine runs, or why it cannot run here. */
function engineBinaries(engine: EngineName): EngineBinaries | { missing: string } {
  const spec: EngineSpec = ENGINES[engine];
  if (process.getuid?.() !== 0) return { missing: `a private ${engine} daemon needs root` };
  const folder = spec.cached && path.join(engineCache(), spec.cached);
  if (spec.cached && folder && !existsSync(path.join(folder, '.complete'))) {
    return { missing: notFetched(spec.cached, folder) };
  }
  if (spec.kind === 'podman' && folder) {
    const root = path.join(folder, 'root');
    const chroot = onPath('chroot');
    if (!chroot) return { missing: 'chroot was not found on PATH' };
    const version = readFileSync(path.join(folder, 'VERSION'), 'utf8').trim();
    return { daemon: chroot, cli: chroot, folder, version, root };
  }
  if (spec.kind === 'podman') {
    const podman = onPath('podman');
    return podman
      ? { daemon: podman, cli: podman }
      : { missing: 'podman was not found on PATH (apt-get install podman)' };
  }
  if (folder) {
    if (!executable(SYSTEM_RUNC)) return { missing: `${SYSTEM_RUNC} is missing (apt-get install runc)` };
    const version = readFileSync(path.join(folder, 'VERSION'), 'utf8').trim();
    return {
      daemon: path.join(folder, 'usr/sbin/dockerd'),
      cli: path.join(folder, 'usr/bin/docker'),
      folder,
      version,
    };
  }
  const dockerd = findDockerd();
  if (!dockerd) return { missing: 'dockerd was not found on PATH (apt-get install docker.io)' };
  if (spec.tls && !onPath('openssl'))
    return { missing: 'openssl was not found on PATH (apt-get install openssl)' };
  const cli = executable(SYSTEM_DOCKER_CLI) ? SYSTEM_DOCKER_CLI : (onPath('docker') ?? SYSTEM_DOCKER_CLI);
  return { daemon: dockerd, cli };
}

/**
 * Whether engine-backed tests can run here (the engine's binaries present, running as root). With
 * `SDP_REQUIRE_DOCKER=1` (CI) a missing engine is an error instead of a reason to skip.
 */
export function dockerTestsEnabled(engine: EngineName = currentEngine()): boolean {
  const found = engineBinaries(engine);
  const missing = 'missing' in found ? found.missing : undefined;
  if (missing && process.env.SDP_REQUIRE_DOCKER === '1') {
    throw new Error(`${engine} is required (SDP_REQUIRE_DOCKER=1) but ${missing}`);
  }
  return !missing;
}

/** The features of `needs` the current engine lacks. */
export function lacking(needs: readonly Feature[], engine: EngineName = currentEngine()): Feature[] {
  return needs.filter((feature) => !engineHas(engine, feature));
}

/**
 * `describe` when a private daemon of the current engine can run here and it has every feature in
 * `needs`; else `describe.skip`, with the reason in the name so the skip shows in the output:
 * `the whole host on a real daemon [skipped on podman: needs run-containers]`.
 */
export function describeDocker(name: string, fn: () => void, needs: readonly Feature[] = []): void {
  if (!dockerTestsEnabled()) return describe.skip(name, fn);
  const missing = lacking(needs);
  if (missing.length)
    return describe.skip(`${name} [skipped on ${currentEngine()}: needs ${missing.join(', ')}]`, fn);
  describe(name, fn);
}

/** `it` when the current engine has every feature in `needs`, else `it.skip` with the reason in the name. */
export function itWith(
  needs: readonly Feature[],
  name: string,
  fn: () => Promise<unknown>,
  timeout?: number,
): void {
  const missing = lacking(needs);
  if (missing.length)
    it.skip(`${name} [skipped on ${currentEngine()}: needs ${missing.join(', ')}]`, fn, timeout);
  else it(name, fn, timeout);
}

// Daemons still running when the process exits get SIGTERM, so they unmount and stop containerd themselves.
const running = new Set<ChildProcess>();
let exitHook = false;
/** Client environment by daemon host, so runAction can add a TLS daemon's variables by itself. */
const hostEnvs = new Map<string, Record<string, string>>();

/** The client environment a daemon started here needs besides its host (TLS variables), or {}. */
export function envForHost(host: string): Record<string, string> {
  return hostEnvs.get(host) ?? {};
}

export interface StartOptions {
  /**
   * The data root on a filesystem of its own, so that free space and inodes belong to this daemon alone:
   * a tmpfs of `size` (`300m`), or an ext4 file system of `size` in a loop-mounted file with `inodes`
   * inodes (`mkfs.ext4 -N`). stop() unmounts it. Needs root.
   */
  dataRootFs?: { type: 'tmpfs'; size: string } | { type: 'ext4'; size: string; inodes?: number };
  /**
   * Run in this folder instead of a new one, keeping its `data/` (the data root) as it is and making
   * everything else afresh: the benchmark restores a saved data root there, at the same path (Podman's
   * database records its storage paths).
   */
  dir?: string;
  /** stop() leaves the daemon's files (the data root above all) in place. */
  keepFiles?: boolean;
  /** More dockerd flags (`--containerd SOCKET` for a containerd of the test's own). */
  dockerdArgs?: string[];
}

/** Mounts the data root's own filesystem (see StartOptions.dataRootFs). */
async function mountDataRoot(dir: string, dataRoot: string, fs: NonNullable<StartOptions['dataRootFs']>) {
  await mkdir(dataRoot, { recursive: true });
  const run = (bin: string, args: string[]) => {
    const r = spawnSync(bin, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed: ${r.stderr || r.error}`);
  };
  if (fs.type === 'tmpfs') {
    run('mount', ['-t', 'tmpfs', '-o', `size=${fs.size}`, 'tmpfs', dataRoot]);
    return;
  }
  const image = path.join(dir, 'data.img');
  run('truncate', ['-s', fs.size, image]);
  run('mkfs.ext4', ['-q', '-F', ...(fs.inodes ? ['-N', String(fs.inodes)] : []), image]);
  run('mount', ['-o', 'loop', image, dataRoot]);
}

/**
 * Starts a private daemon of `engine` (default: SDP_ENGINE, else docker20) and waits until it answers
 * `/_ping`. Returns undefined when the engine cannot run here (see dockerTestsEnabled), so a test file
 * can skip.
 */
export async function startDaemon(
  name = 'd',
  engine: EngineName = currentEngine(),
  opts: StartOptions = {},
): Promise<PrivateDaemon | undefined> {
  if (!dockerTestsEnabled(engine)) return undefined;
  const spec: EngineSpec = ENGINES[engine];
  const bins = engineBinaries(engine) as EngineBinaries;
  // Short paths: a unix socket path must stay under ~108 bytes.
  const dir = opts.dir ?? (await mkdtemp(`/tmp/sdp-${name.replace(/[^\w-]/g, '').slice(0, 12)}-`));
  if (opts.dir) await clearExceptData(opts.dir);
  const socket = path.join(dir, 'docker.sock');
  const logFile = path.join(dir, 'daemon.log');
  const dataRoot = path.join(dir, 'data');
  if (opts.dataRootFs) {
    try {
      await mountDataRoot(dir, dataRoot, opts.dataRootFs);
    } catch (error) {
      await removeDir(dir);
      throw error;
    }
  }

  let launch: { args: string[]; env: Record<string, string> };
  let cliCommand: { bin: string; args: string[]; env: Record<string, string> };
  let tls: Tls | undefined;
  if (spec.kind === 'podman') {
    const podman = await podmanSetup(dir, dataRoot);
    // podman5: `chroot ROOT /usr/bin/podman …`, with the daemon's folder bound into the root at its own
    // path, so the socket, the storage and every path the API reports are the same inside and out.
    const chrooted = bins.root ? [bins.root, '/usr/bin/podman'] : [];
    if (bins.root) {
      try {
        await enterRoot(bins.root, dir);
      } catch (error) {
        await removeDir(dir, [bins.root + dir]);
        throw error;
      }
    }
    launch = {
      args: [...chrooted, ...podman.globalArgs, 'system', 'service', '--time=0', `unix://${socket}`],
      env: podman.env,
    };
    cliCommand = { bin: bins.cli, args: [...chrooted, ...podman.globalArgs], env: podman.env };
  } else {
    // An explicit config file keeps the host's /etc/docker/daemon.json out of the picture.
    const features =
      spec.features ?? (spec.imageStore === 'containerd' ? { 'containerd-snapshotter': true } : {});
    const config = Object.keys(features).length ? { features } : {};
    await writeFile(path.join(dir, 'daemon.json'), JSON.stringify(config) + '\n');
    let listen = ['-H', `unix://${socket}`];
    if (spec.tls) {
      tls = await makeCertificates(path.join(dir, 'tls'), await freePort());
      listen = [
        ...['-H', `tcp://127.0.0.1:${tls.port}`, '--tlsverify'],
        ...['--tlscacert', tls.files.ca, '--tlscert', tls.files.serverCert, '--tlskey', tls.files.serverKey],
      ];
    }
    let searchPath = `${process.env.PATH ?? ''}:${SYSTEM_PATH}`;
    if (bins.folder) {
      // The cached engine's containerd, shim and docker-init, and bookworm's runc before all (see SYSTEM_RUNC):
      // a folder holding only a link to it keeps the rest of /usr/sbin (Docker 20.10's own helpers) behind.
      const runcDir = path.join(dir, 'runc');
      await mkdir(runcDir);
      await symlink(SYSTEM_RUNC, path.join(runcDir, 'runc'));
      searchPath = [
        runcDir,
        path.join(bins.folder, 'usr/bin'),
        path.join(bins.folder, 'usr/sbin'),
        SYSTEM_PATH,
      ].join(':');
    }
    launch = {
      args: [
        ...['--config-file', path.join(dir, 'daemon.json')],
        ...['--data-root', dataRoot, '--exec-root', path.join(dir, 'exec')],
        ...['--pidfile', path.join(dir, 'docker.pid'), ...listen],
        ...['--bridge=none', '--iptables=false', '--ip-masq=false', '--ip6tables=false'],
        // Containers still running at shutdown get 2 s, not 10 (busybox as PID 1 ignores SIGTERM).
        '--shutdown-timeout=2',
        ...(opts.dockerdArgs ?? []),
        // dockerd picks overlay2 where it works (vfs otherwise); SDP_STORAGE_DRIVER pins one (classic store only).
        ...(process.env.SDP_STORAGE_DRIVER && spec.imageStore === 'classic'
          ? ['--storage-driver', process.env.SDP_STORAGE_DRIVER]
          : []),
      ],
      env: { ...stringEnv(process.env), PATH: searchPath },
    };
    cliCommand = { bin: bins.cli, args: [], env: {} };
  }

  const host = tls ? `tcp://127.0.0.1:${tls.port}` : `unix://${socket}`;
  const clientEnv: Record<string, string> = tls ? { DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: tls.dir } : {};
  if (spec.kind === 'docker') {
    // The CLI gets only this daemon: its own config folder (no host contexts, no credential helpers).
    await mkdir(path.join(dir, 'cli'));
    // Docker 23+ CLIs build with BuildKit only through the buildx plugin: the cached engine's own.
    const plugins = bins.folder && path.join(bins.folder, 'usr/libexec/docker/cli-plugins');
    if (plugins && existsSync(plugins)) await symlink(plugins, path.join(dir, 'cli', 'cli-plugins'));
    cliCommand.env = { DOCKER_HOST: host, DOCKER_CONFIG: path.join(dir, 'cli'), ...clientEnv };
  }

  const log = openSync(logFile, 'a');
  const child = spawn(bins.daemon, launch.args, { stdio: ['ignore', log, log], env: launch.env });
  closeSync(log);
  child.unref();
  if (!exitHook) process.once('exit', () => running.forEach((c) => c.kill('SIGTERM')));
  exitHook = true;
  running.add(child);
  // 'error' (a failed spawn) comes instead of 'exit'.
  const exited = new Promise<void>((resolve) => child.once('exit', resolve).once('error', resolve));
  void exited.then(() => running.delete(child));

  let stopped: Promise<void> | undefined;
  const docker = tls
    ? new Dockerode({ protocol: 'https', host: '127.0.0.1', port: tls.port, ...tls.client })
    : new Dockerode({ socketPath: socket });
  const daemon: PrivateDaemon = {
    engine,
    imageStore: spec.imageStore,
    canRunContainers: spec.canRunContainers,
    version: bins.version ?? '',
    apiVersion: '',
    host,
    socket: tls ? undefined : socket,
    env: clientEnv,
    dir,
    dataRoot,
    logFile,
    pid: child.pid ?? -1,
    docker,
    cli: (args, opts = {}) =>
      runCli(
        cliCommand.bin,
        [...cliCommand.args, ...args],
        { ...cliCommand.env, ...opts.env },
        opts.timeoutMs,
      ),
    stop: () => (stopped ??= stop(daemon, child, exited, { keepFiles: opts.keepFiles, root: bins.root })),
  };
  if (Object.keys(clientEnv).length) hostEnvs.set(host, clientEnv);

  const deadline = Date.now() + START_TIMEOUT_MS;
  const label = `${engine} (${path.basename(bins.daemon)})`;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
      const tail = await logTail(logFile);
      await daemon.stop();
      throw new Error(`${label} exited during start-up (${child.exitCode ?? child.signalCode}):\n${tail}`);
    }
    if (await ping(tls ? { port: tls.port, ...tls.client } : { socketPath: socket })) break;
    if (Date.now() > deadline) {
      const tail = await logTail(logFile);
      await daemon.stop();
      throw new Error(`${label} did not answer /_ping within ${START_TIMEOUT_MS / 1000} s:\n${tail}`);
    }
    await sleep(100);
  }
  const version = (await docker.version()) as { Version: string; ApiVersion: string };
  daemon.version = version.Version;
  daemon.apiVersion = version.ApiVersion;
  return daemon;
}

/**
 * Podman's global options and environment: storage, run state, networks and its tmp dir all below the
 * daemon's dir, and private containers.conf / registries.conf / storage.conf so the host's configuration
 * (and its /etc/containers/networks) neither leaks in nor gets written to.
 */
async function podmanSetup(
  dir: string,
  dataRoot: string,
): Promise<{ globalArgs: string[]; env: Record<string, string> }> {
  const conf = path.join(dir, 'conf');
  const runRoot = path.join(dir, 'run');
  const networks = path.join(dir, 'networks');
  const tmp = path.join(dir, 'tmp');
  await Promise.all([conf, runRoot, networks, tmp].map((d) => mkdir(d, { recursive: true })));
  const files = {
    CONTAINERS_CONF: path.join(conf, 'containers.conf'),
    CONTAINERS_REGISTRIES_CONF: path.join(conf, 'registries.conf'),
    CONTAINERS_STORAGE_CONF: path.join(conf, 'storage.conf'),
  };
  await writeFile(
    files.CONTAINERS_CONF,
    [
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `tmp_dir = "${tmp}"`,
      '[network]',
      `network_config_dir = "${networks}"`,
      '',
    ].join('\n'),
  );
  // No registry is reachable here: short names resolve to local images only.
  await writeFile(files.CONTAINERS_REGISTRIES_CONF, 'unqualified-search-registries = []\n');
  await writeFile(
    files.CONTAINERS_STORAGE_CONF,
    ['[storage]', 'driver = "overlay"', `graphroot = "${dataRoot}"`, `runroot = "${runRoot}"`, ''].join('\n'),
  );
  const globalArgs = [
    ...['--root', dataRoot, '--runroot', runRoot, '--storage-driver', 'overlay'],
    ...['--cgroup-manager', 'cgroupfs', '--events-backend', 'file'],
    ...['--tmpdir', tmp, '--network-config-dir', networks],
  ];
  return {
    globalArgs,
    env: {
      ...stringEnv(process.env),
      ...files,
      PATH: `${process.env.PATH ?? ''}:${SYSTEM_PATH}`,
      // Podman 5 warns on every command that this host's cgroups v1 are deprecated.
      PODMAN_IGNORE_CGROUPSV1_WARNING: '1',
    },
  };
}

interface Tls {
  port: number;
  dir: string;
  files: { ca: string; serverCert: string; serverKey: string };
  /** dockerode's / https' client options. */
  client: { ca: Buffer; cert: Buffer; key: Buffer };
}

/**
 * A throw-away CA, a server certificate for 127.0.0.1 / localhost and a client certificate, named as the
 * docker CLI and dockerode expect them in DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem.
 */
async function makeCertificates(dir: string, port: number): Promise<Tls> {
  await mkdir(dir, { mode: 0o700 });
  const f = (name: string) => path.join(dir, name);
  const ssl = (...args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr || r.error}`);
  };
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl(
    'req',
    '-x509',
    ...key,
    '-keyout',
    f('ca-key.pem'),
    '-out',
    f('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=sdp test CA',
  );
  const sign = (csr: string, out: string, ext: string) => {
    writeFileSync(f(`${out}.ext`), ext);
    ssl(
      ...['x509', '-req', '-in', f(csr), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial'],
      ...['-out', f(out), '-days', '2', '-extfile', f(`${out}.ext`)],
    );
  };
  ssl('req', ...key, '-keyout', f('server-key.pem'), '-out', f('server.csr'), '-subj', '/CN=localhost');
  sign(
    'server.csr',
    'server-cert.pem',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  ssl('req', ...key, '-keyout', f('key.pem'), '-out', f('client.csr'), '-subj', '/CN=sdp test client');
  sign('client.csr', 'cert.pem', 'extendedKeyUsage=clientAuth\n');
  return {
    port,
    dir,
    files: { ca: f('ca.pem'), serverCert: f('server-cert.pem'), serverKey: f('server-key.pem') },
    client: {
      ca: readFileSync(f('ca.pem')),
      cert: readFileSync(f('cert.pem')),
      key: readFileSync(f('key.pem')),
    },
  };
}

/** A loopback TCP port nothing listens on (bound and released here, so it was free a moment ago). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

function stringEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

function runCli(
  bin: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 120_000,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      env: { PATH: `${process.env.PATH ?? ''}:${SYSTEM_PATH}`, HOME: process.env.HOME ?? '/root', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128, stdout, stderr: signal ? `${stderr}\nkilled: ${signal}` : stderr });
    });
  });
}

async function stop(
  daemon: PrivateDaemon,
  child: ChildProcess,
  exited: Promise<void>,
  { keepFiles = false, root }: { keepFiles?: boolean; root?: string },
): Promise<void> {
  let bridges: string[] = [];
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    // Kill running containers first: a daemon shutdown would give each its stop timeout.
    await killContainers(daemon.docker).catch(() => undefined);
    if (ENGINES[daemon.engine].kind === 'docker')
      bridges = await bridgeInterfaces(daemon.docker).catch(() => []);
    child.kill('SIGTERM');
    if (!(await within(exited, STOP_TIMEOUT_MS))) {
      child.kill('SIGKILL');
      await exited;
    }
  }
  // A clean exit stops containerd and unmounts the layers. After SIGKILL or a crash, containerd, shims
  // and container processes may be left over (Podman's conmon always is, for created containers): end
  // those this daemon started (see leftoverPids).
  if (child.exitCode !== 0 || ENGINES[daemon.engine].kind === 'podman') {
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
  hostEnvs.delete(daemon.host);
  // The daemon's folder as bound into a chroot root (podman5): unmounted (with what podman mounted below
  // it there) and its empty mount point removed, whether or not the files are kept.
  const inRoot = root && root + daemon.dir;
  if (inRoot) await unmountBelow(inRoot);
  if (inRoot) await rmdir(inRoot).catch(() => undefined);
  if (!keepFiles) await removeDir(daemon.dir);
}

/**
 * Makes a chroot root (podman5's) ready for a daemon in `dir`: /proc, /sys and /dev bound into it (once
 * per boot; under a lock, as test files start daemons at once; rslave, so unmounting them there never
 * reaches the host's), and `dir` bound at the same path inside it.
 */
async function enterRoot(root: string, dir: string): Promise<void> {
  const script = [
    'set -e',
    'for m in proc sys dev; do',
    '  mountpoint -q "$1/$m" || { mount --rbind "/$m" "$1/$m"; mount --make-rslave "$1/$m"; }',
    'done',
    'mkdir -p "$1$2"',
    'mountpoint -q "$1$2" || mount --rbind "$2" "$1$2"',
  ].join('\n');
  const lock = path.join(path.dirname(root), '.mounts.lock');
  const r = spawnSync('flock', [lock, 'sh', '-c', script, 'sh', root, dir], { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(`binding /proc, /sys, /dev and ${dir} into ${root} failed: ${r.stderr || r.error}`);
}

/** Empties a reused daemon folder but for its data root (see StartOptions.dir). */
async function clearExceptData(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const entry of await readdir(dir)) {
    if (entry !== 'data') await rm(path.join(dir, entry), { recursive: true, force: true });
  }
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
 * Processes this daemon left: those whose command line names its dir (containerd, shims, conmon) and
 * container processes (`init.pid` files in the exec root) whose parent is one of those shims. Checking
 * command lines keeps a stale pid file or a reused pid from naming someone else's process.
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

/**
 * Removes the daemon's dir, unmounting first whatever is still mounted below it (deepest first), and
 * below each of `alsoUnder` (where the dir is bound into a chroot root) before that.
 */
export async function removeDir(dir: string, alsoUnder: string[] = []): Promise<void> {
  for (const other of alsoUnder) await unmountBelow(other);
  await unmountBelow(dir);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Unmounts (lazily, deepest first) every mount at or below `dir`. */
async function unmountBelow(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((mount): mount is string => !!mount && (mount === dir || mount.startsWith(dir + '/')))
    .sort((a, b) => b.length - a.length);
  for (const mount of mounts) spawnSync('umount', ['-l', mount], { stdio: 'ignore' });
}

function ping(
  target: { socketPath: string } | { port: number; ca: Buffer; cert: Buffer; key: Buffer },
): Promise<boolean> {
  return new Promise((resolve) => {
    const options = { path: '/_ping', timeout: 1000 };
    const done = (res: http.IncomingMessage) => {
      res.resume();
      resolve(res.statusCode === 200);
    };
    const req =
      'socketPath' in target
        ? http.get({ ...options, socketPath: target.socketPath }, done)
        : https.get({ ...options, host: '127.0.0.1', ...target }, done);
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
