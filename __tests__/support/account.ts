// The runner's account: an unprivileged user in the `docker` group, as GitHub's runners run jobs. It can
// reach the daemon's socket but not read the daemon's data root. The test run (root) makes the user once,
// puts a socket it may open in front of the private daemon, and runs node as that user.
import { spawnSync } from 'node:child_process';
import { constants } from 'node:fs';
import { access, chmod, chown, copyFile, cp, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import type { PrivateDaemon } from './daemon';

/** The user the runner-account tests run as (`useradd -m -G docker`). */
export const RUNNER_USER = 'sdp-runner';

export interface RunnerAccount {
  name: string;
  uid: number;
  gid: number;
  /** The `docker` group's id (its supplementary group). */
  dockerGid: number;
  home: string;
}

const run = (bin: string, args: string[]) => spawnSync(bin, args, { encoding: 'utf8' });

function idOf(kind: 'passwd' | 'group', name: string): string[] | undefined {
  const r = run('getent', [kind, name]);
  return r.status === 0 ? r.stdout.trim().split(':') : undefined;
}

/**
 * The runner account, made when missing: group `docker`, then `sdp-runner` in it (home under /home).
 * Only root can; undefined elsewhere. Idempotent, and safe when several test files ask at once (a
 * second useradd that loses the race finds the user there).
 */
export function runnerAccount(): RunnerAccount | undefined {
  if (process.getuid?.() !== 0) return undefined;
  if (!idOf('group', 'docker')) run('groupadd', ['--system', 'docker']);
  if (!idOf('passwd', RUNNER_USER)) run('useradd', ['-m', '-G', 'docker', '-s', '/bin/sh', RUNNER_USER]);
  const user = idOf('passwd', RUNNER_USER);
  const group = idOf('group', 'docker');
  if (!user || !group) throw new Error(`could not make the user ${RUNNER_USER} in group docker`);
  if (!(group[3] ?? '').split(',').includes(RUNNER_USER)) run('usermod', ['-aG', 'docker', RUNNER_USER]);
  return {
    name: RUNNER_USER,
    uid: Number(user[2]),
    gid: Number(user[3]),
    dockerGid: Number(group[2]),
    home: user[5],
  };
}

/** The command line that runs `argv` as the account (uid, its group, and docker as supplementary group). */
export function asAccount(account: RunnerAccount, argv: string[]): string[] {
  return [
    'setpriv',
    `--reuid=${account.uid}`,
    `--regid=${account.gid}`,
    `--groups=${account.dockerGid}`,
    '--',
    ...argv,
  ];
}

/** Whether the account can do `test FLAG file` (`-r`, `-x`, …): the kernel's answer, not a guess from modes. */
export function accountCan(account: RunnerAccount, flag: string, file: string): boolean {
  const [bin, ...args] = asAccount(account, ['test', flag, file]);
  return run(bin, args).status === 0;
}

/** A folder owned by the account (mode 0700), below its home. */
export async function accountDir(account: RunnerAccount, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(account.home, `${prefix}-`));
  await chown(dir, account.uid, account.gid);
  return dir;
}

let sharedNode: Promise<string> | undefined;

/**
 * A node binary the account can run: SDP_NODE (or this process's node) where the account can reach it;
 * else a copy in a folder of its own that everyone may traverse. CI's .ci/run installs Node 24 into a
 * `mktemp -d` folder, which is 0700 root: the account cannot even look inside.
 */
export function accountNode(account: RunnerAccount): Promise<string> {
  const node = process.env.SDP_NODE ?? process.execPath;
  return (sharedNode ??= (async () => {
    if (accountCan(account, '-x', node)) return node;
    const dir = await mkdtemp('/tmp/sdp-node-');
    await chmod(dir, 0o755);
    const copy = path.join(dir, 'node');
    await copyFile(node, copy);
    await chmod(copy, 0o755);
    process.once('exit', () => spawnSync('rm', ['-rf', dir]));
    return copy;
  })());
}

const bundleCopies = new Map<string, Promise<string>>();

/**
 * `script` where the account can read it; else its folder (the bundle: dist/ with its chunks) copied once
 * to a folder everyone may traverse. A clone in a 0700 home (root's, a CI workspace) is out of the
 * account's reach, as the runner's own checkout never is.
 */
export async function accountScript(account: RunnerAccount, script: string): Promise<string> {
  await access(script, constants.R_OK);
  if (accountCan(account, '-r', script)) return script;
  const folder = path.dirname(script);
  let copy = bundleCopies.get(folder);
  if (!copy) {
    copy = (async () => {
      const dir = await mkdtemp('/tmp/sdp-bundle-');
      await cp(folder, dir, { recursive: true });
      spawnSync('chmod', ['-R', 'a+rX', dir]);
      process.once('exit', () => spawnSync('rm', ['-rf', dir]));
      return dir;
    })();
    bundleCopies.set(folder, copy);
  }
  const copied = path.join(await copy, path.basename(script));
  if (!accountCan(account, '-r', copied)) throw new Error(`${account.name} cannot read ${copied} either`);
  return copied;
}

export interface AccountSocket {
  /** `unix:///tmp/sdp-acct-…/docker.sock`: the `docker-host` the account uses. */
  host: string;
  socket: string;
  /** The environment the account's client needs besides the host (TLS: its own copy of the certificates). */
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * The daemon as the account reaches it. A unix-socket daemon here lives in a 0700 folder (podman5's
 * socket under the engine cache): a byte pipe, run by the test, listens on a socket in a 0755 folder with
 * the daemon socket's usual owner and mode (root:docker 0660) and forwards each connection to the daemon.
 * A TLS daemon is reached on its TCP port: the account gets its own copy of the client certificates.
 */
export async function accountSocket(account: RunnerAccount, daemon: PrivateDaemon): Promise<AccountSocket> {
  if (!daemon.socket) return tlsAccess(account, daemon);
  const target = daemon.socket;
  const dir = await mkdtemp('/tmp/sdp-acct-');
  await chmod(dir, 0o755);
  const socket = path.join(dir, 'docker.sock');
  const connections = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target);
    for (const s of [client, upstream]) {
      connections.add(s);
      s.on('close', () => connections.delete(s));
      s.on('error', () => (s === client ? upstream : client).destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socket, resolve));
  await chown(socket, 0, account.dockerGid);
  await chmod(socket, 0o660);
  return {
    host: `unix://${socket}`,
    socket,
    env: {},
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of connections) s.destroy();
      await closed;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function tlsAccess(account: RunnerAccount, daemon: PrivateDaemon): Promise<AccountSocket> {
  const certs = daemon.env.DOCKER_CERT_PATH;
  if (!certs) throw new Error(`${daemon.engine} has neither a unix socket nor client certificates`);
  const dir = await accountDir(account, '.sdp-certs');
  for (const name of ['ca.pem', 'cert.pem', 'key.pem']) {
    await copyFile(path.join(certs, name), path.join(dir, name));
    await chown(path.join(dir, name), account.uid, account.gid);
    await chmod(path.join(dir, name), 0o600);
  }
  return {
    host: daemon.host,
    socket: '',
    env: { ...daemon.env, DOCKER_CERT_PATH: dir },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A file's owner, or undefined when it is not there. */
export async function ownerOf(file: string): Promise<number | undefined> {
  return stat(file).then(
    (info) => info.uid,
    () => undefined,
  );
}

/** Makes `dir` (and its parents below the account's home) the account's own, mode 0700. */
export async function giveToAccount(account: RunnerAccount, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chown(dir, account.uid, account.gid);
}
