// Where the daemon's images are on this machine's disk, and how full that filesystem is. With Docker's
// containerd image store the images live in containerd's root, which `/info` does not name and which may be
// on another filesystem than the data root (moby#50517): it is found from the containerd serving the
// daemon (its command line and configuration), else from the usual layouts.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readdir, readFile, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InputError } from '../errors';
import type { DiskPlace, Inventory } from '../types';

export interface DiskStats {
  freeBytes: number;
  totalBytes: number;
  freeInodes: number;
  totalInodes: number;
}

/** Where the daemon keeps things, as `/info` says. */
export type DaemonPlaces = Pick<Inventory, 'rootDir' | 'driver' | 'containerdAddress'> & {
  engine: Pick<Inventory['engine'], 'imageStore'>;
};

/** A containerd process as /proc shows it, with its configuration file's text ('' when there is none). */
export interface ContainerdSeen {
  argv: string[];
  configFile: string;
  /** Undefined when the file exists but cannot be read. */
  config?: string;
}

/** The filesystems a run measures: the one budgets use, and the data root's when that is another. */
export interface DiskPlaces {
  measured?: DiskPlace;
  dataRoot?: DiskPlace;
}

const DEFAULT_ADDRESS = '/run/containerd/containerd.sock';
const DEFAULT_ROOT = '/var/lib/containerd';
const DEFAULT_CONFIG = '/etc/containerd/config.toml';

/**
 * Bytes available on the filesystem holding the daemon's data root, or undefined when that cannot be
 * known from here: a remote daemon, or a socket from another machine or container whose data root is
 * not visible at the same path (then a number would be some other disk's, so none is given).
 */
export async function diskFree(host: string, rootDir: string): Promise<number | undefined> {
  return isLocalDataRoot(host, rootDir) ? (await diskStats(rootDir))?.freeBytes : undefined;
}

/** Free and total bytes and inodes of the filesystem holding `path` (statfs needs no read permission on it). */
export async function diskStats(path: string | undefined): Promise<DiskStats | undefined> {
  if (!path) return undefined;
  try {
    const fs = await statfs(path);
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
 * The filesystems to measure: `data-path` when set; else, for a daemon on this machine, the containerd
 * store's snapshots (see snapshotPlaces) or the data root. The data root is also given when the measured
 * path is on another filesystem, to report both.
 */
export async function locateDisk(host: string, daemon: DaemonPlaces, dataPath?: string): Promise<DiskPlaces> {
  const local = isLocalDataRoot(host, daemon.rootDir);
  const dataRoot: DiskPlace | undefined = local
    ? { path: daemon.rootDir, holds: 'data-root', why: "the daemon's data root (DockerRootDir)" }
    : undefined;
  let measured = dataPath
    ? { path: dataPath, holds: 'data-path' as const, why: 'the data-path input' }
    : dataRoot;
  if (!dataPath && local && daemon.engine.imageStore === 'containerd') {
    for (const place of snapshotPlaces(daemon, await containerdsSeen())) {
      if (await exists(place.path)) {
        measured = place;
        break;
      }
    }
  }
  const apart = measured && dataRoot && !(await sameFilesystem(measured.path, dataRoot.path));
  return { measured, ...(apart ? { dataRoot } : {}) };
}

/**
 * Where the containerd image store's snapshots may be, best first, each with why: from the containerd
 * process that serves the daemon's socket (its flags and configuration: `root`, the snapshotter's
 * `root_path`), else dockerd's own containerd (`<data-root>/containerd/daemon`, moby's layout), else the
 * system containerd's configuration (`/etc/containerd/config.toml`, default root /var/lib/containerd).
 */
export function snapshotPlaces(daemon: DaemonPlaces, seen: ContainerdSeen[]): DiskPlace[] {
  const driver = daemon.driver || 'overlayfs';
  const managedRoot = join(daemon.rootDir, 'containerd', 'daemon');
  const known = seen.map((s) => ({ ...describeContainerd(s, driver), file: s.configFile }));
  const serving =
    known.find((c) => daemon.containerdAddress && c.address === daemon.containerdAddress) ??
    (daemon.containerdAddress ? undefined : known.find((c) => c.root === managedRoot));
  if (serving) {
    const why = `the containerd serving ${serving.address} (${serving.rootFrom})`;
    return placesOf(serving, why);
  }
  const places = placesOf(
    { root: managedRoot, snapshots: join(managedRoot, `io.containerd.snapshotter.v1.${driver}`) },
    "dockerd's own containerd (<data-root>/containerd/daemon)",
  );
  const system = known.find((c) => c.file === DEFAULT_CONFIG && !c.flagged);
  const address = daemon.containerdAddress;
  if (system && (!address || address === system.address)) {
    places.push(...placesOf(system, `the system containerd (${system.rootFrom})`));
  }
  return places;
}

function placesOf(c: { root?: string; snapshots?: string }, why: string): DiskPlace[] {
  return [
    ...(c.snapshots ? [{ path: c.snapshots, holds: 'snapshots' as const, why: `snapshots of ${why}` }] : []),
    ...(c.root ? [{ path: c.root, holds: 'snapshots' as const, why: `root of ${why}` }] : []),
  ];
}

/**
 * A containerd's socket, root and snapshot folder from its flags (`--address`/`-a`, `--root`) and
 * configuration (`root`, `[grpc] address`, the snapshotter plugin's `root_path`); containerd's defaults
 * where neither says. No root when the configuration exists but cannot be read.
 */
export function describeContainerd(seen: ContainerdSeen, driver: string) {
  const toml = seen.config === undefined ? undefined : parseToml(seen.config);
  const rootFlag = flagOf(seen.argv, ['--root']);
  const root = rootFlag ?? (toml ? (toml.get('.root') ?? DEFAULT_ROOT) : undefined);
  const plugin = toml?.get(`plugins.io.containerd.snapshotter.v1.${driver}.root_path`);
  return {
    address: flagOf(seen.argv, ['--address', '-a']) ?? toml?.get('grpc.address') ?? DEFAULT_ADDRESS,
    root,
    snapshots: plugin ?? (root ? join(root, `io.containerd.snapshotter.v1.${driver}`) : undefined),
    rootFrom: rootFlag ? '--root' : toml?.has('.root') ? seen.configFile : `containerd's default root`,
    flagged: flagOf(seen.argv, ['--config', '-c']) !== undefined,
  };
}

/** A flag's value: `--root X`, `--root=X`. */
function flagOf(argv: string[], names: string[]): string | undefined {
  for (let i = 1; i < argv.length; i++) {
    for (const name of names) {
      if (argv[i] === name && i + 1 < argv.length) return argv[i + 1];
      if (argv[i].startsWith(`${name}=`)) return argv[i].slice(name.length + 1);
    }
  }
  return undefined;
}

/**
 * The string values of a TOML document by dotted key (`.root` at the top level, `grpc.address`,
 * `plugins.io.containerd.snapshotter.v1.overlayfs.root_path`): quotes in table names dropped. Enough of
 * TOML for containerd's configuration; anything else is skipped.
 */
export function parseToml(text: string): Map<string, string> {
  const values = new Map<string, string>();
  let table = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const header = /^\[(\[?)([^[\]]+)\]\]?\s*(?:#.*)?$/.exec(line);
    if (header) {
      // An array of tables (`[[x]]`) holds nothing looked for here: its keys are skipped.
      table = header[1] ? '[]' : header[2].replace(/["'\s]/g, '');
      continue;
    }
    const pair = /^([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')\s*(?:#.*)?$/.exec(line);
    if (pair) values.set(`${table}.${pair[1]}`, pair[3] ?? pair[2].replace(/\\(.)/g, '$1'));
  }
  return values;
}

/** The containerd processes this machine shows in /proc, each with its configuration where readable. */
async function containerdsSeen(): Promise<ContainerdSeen[]> {
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
  const seen: ContainerdSeen[] = [];
  for (const pid of pids) {
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    if (comm.trim() !== 'containerd') continue;
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    seen.push(await withConfig(argv, flagOf(argv, ['--config', '-c']) ?? DEFAULT_CONFIG));
  }
  // The system containerd's configuration, also when its process is not visible here.
  if (!seen.some((s) => s.configFile === DEFAULT_CONFIG)) seen.push(await withConfig([], DEFAULT_CONFIG));
  return seen;
}

async function withConfig(argv: string[], configFile: string): Promise<ContainerdSeen> {
  try {
    return { argv, configFile, config: await readFile(configFile, 'utf8') };
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    return { argv, configFile, ...(missing ? { config: '' } : {}) };
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Same device; where either cannot be stat'ed, the same statfs figures. */
async function sameFilesystem(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([stat(a).catch(() => undefined), stat(b).catch(() => undefined)]);
  if (sa && sb) return sa.dev === sb.dev;
  const [fa, fb] = await Promise.all([statfs(a).catch(() => undefined), statfs(b).catch(() => undefined)]);
  return !!fa && !!fb && fa.type === fb.type && fa.blocks === fb.blocks && fa.files === fb.files;
}

/** The one rule for measuring a disk at all: a daemon on this machine (a unix socket) and its data root here. */
export function isLocalDataRoot(host: string, rootDir: string): boolean {
  return host.startsWith('unix://') && isDataRoot(rootDir);
}

/**
 * A Docker data root holds `image/` (classic store), `containerd/` (containerd image store) or, from Docker 24,
 * `engine-id` (the only one of these when the containerd store runs on a containerd outside it); Podman's
 * storage root holds `<driver>-images/` (`overlay-images/`). One this user may not look into (Docker's
 * 0710 root-owned /var/lib/docker, for a member of the docker group) counts when it is a folder of
 * another user's: the daemon is local (a unix socket), and its data root exists here.
 */
function isDataRoot(rootDir: string): boolean {
  if (!rootDir) return false;
  if (['image', 'containerd', 'engine-id'].some((name) => existsSync(join(rootDir, name)))) return true;
  try {
    return readdirSync(rootDir).some((entry) => /^[a-z0-9]+-images$/.test(entry));
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EACCES' && unreadableFolderOfAnother(rootDir);
  }
}

function unreadableFolderOfAnother(dir: string): boolean {
  try {
    const s = statSync(dir);
    return s.isDirectory() && s.uid !== process.getuid?.() && dirname(dir) !== dir;
  } catch {
    return false;
  }
}

/** `data-path` must exist (statfs needs no more); an InputError naming it otherwise. */
export async function checkDataPath(path: string): Promise<void> {
  try {
    await statfs(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(
      'data-path',
      path,
      code === 'ENOENT' ? 'does not exist' : `cannot be measured (${code})`,
    );
  }
}
