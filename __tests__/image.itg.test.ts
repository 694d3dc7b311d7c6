// The container image of deploy/container/Dockerfile, built and run for real without a registry: a
// stand-in for its base image (FROM node:24-slim) is made on the spot in a private daemon from a root
// filesystem holding only a Node 24 binary (SDP_NODE, as CI downloads it, else this Node) and the shared
// libraries ldd lists for it, imported under the Dockerfile's exact FROM name; the real Dockerfile is
// built against that daemon with the legacy builder (which uses the local base, never pulls) from a
// context of what `npm pack` ships; then the image runs with the private daemon's socket mounted, in
// report mode, and must report that daemon's images and remove nothing. The image does not depend on
// the engine that runs it: checked on docker20 only, as the npm package is (pack.itg.test.ts).
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { recordRun, repoRoot } from './support/action';
import { currentEngine, describeDocker, startDaemon, type PrivateDaemon } from './support/daemon';
import { imageState, loadFleet, sampleFleet } from './support/fleet';

const root = repoRoot();
const ENGINE = 'docker20';
const dockerfile = path.join(root, 'deploy/container/Dockerfile');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
const tag = `safe-docker-prune:${pkg.version}`;
const node = process.env.SDP_NODE ?? process.execPath;
const nodeVersion = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
let temp: string;
let daemon: PrivateDaemon;

/** A command that must succeed; its output is kept for a failing test's dump. */
function run(command: string, args: string[], cwd = temp): string {
  const started = performance.now();
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const code = r.status ?? 128;
  recordRun(`${command} ${args.join(' ')}`, {
    code,
    stdout: r.stdout,
    stderr: r.stderr,
    durationMs: Math.round(performance.now() - started),
  });
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}: ${r.stderr || r.error}`);
  return r.stdout;
}

/** The files `ldd` says a binary loads (the loader included), as absolute paths. */
function sharedLibraries(binary: string): string[] {
  return run('ldd', [binary])
    .split('\n')
    .map((line) => /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line)?.[1])
    .filter((file): file is string => !!file);
}

/**
 * A root filesystem with `node` at /usr/local/bin (where the official image has it), its libraries at
 * the paths ldd names and a /tmp for everyone, imported as `name` with the official image's PATH.
 */
async function importStandIn(name: string): Promise<void> {
  const rootfs = path.join(temp, 'rootfs');
  const place = async (from: string, to: string) => {
    await mkdir(path.dirname(path.join(rootfs, to)), { recursive: true });
    await copyFile(realpathSync(from), path.join(rootfs, to));
    await chmod(path.join(rootfs, to), (await stat(from)).mode & 0o777);
  };
  await place(node, 'usr/local/bin/node');
  for (const library of sharedLibraries(node)) await place(library, library);
  await mkdir(path.join(rootfs, 'tmp'));
  await chmod(path.join(rootfs, 'tmp'), 0o1777);
  const tar = path.join(temp, 'rootfs.tar');
  run('tar', ['-C', rootfs, '-cf', tar, '.']);
  const imported = await daemon.cli([
    'import',
    ...['--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    ...['--change', 'CMD ["node"]'],
    tar,
    name,
  ]);
  expect({ code: imported.code, stderr: imported.stderr }).toMatchObject({ code: 0 });
}

/** A build context of what `npm pack` ships, at the same relative paths. */
async function packContext(): Promise<string> {
  const context = path.join(temp, 'context');
  const packed = JSON.parse(
    run(
      'npm',
      ['pack', '--dry-run', '--json', '--offline', '--ignore-scripts', '--cache', path.join(temp, 'npm')],
      root,
    ),
  )[0] as { files: { path: string }[] };
  for (const { path: file } of packed.files) {
    await mkdir(path.dirname(path.join(context, file)), { recursive: true });
    await copyFile(path.join(root, file), path.join(context, file));
  }
  return context;
}

describeDocker(
  'the container image (deploy/container/Dockerfile), built without a registry and run on a private daemon',
  () => {
    if (currentEngine() !== ENGINE) {
      it.skip(`[skipped on ${currentEngine()}: the image is engine-independent, checked on ${ENGINE}]`, () =>
        Promise.resolve());
      return;
    }
    if (!nodeVersion.startsWith('v24.')) {
      const why = `the stand-in base image needs a Node 24 binary (SDP_NODE), not ${node} ${nodeVersion}`;
      if (process.env.SDP_REQUIRE_DOCKER === '1') it(why, () => Promise.reject(new Error(why)));
      else it.skip(`[skipped: ${why}]`, () => Promise.resolve());
      return;
    }

    let from: string;
    let socketGroup: number;

    beforeAll(async () => {
      temp = await mkdtemp(path.join(tmpdir(), 'sdp-image-'));
      daemon = (await startDaemon('image'))!;
      from = /^FROM\s+(\S+)\s*$/m.exec(await readFile(dockerfile, 'utf8'))![1];
      await importStandIn(from);
      await loadFleet(daemon.docker, sampleFleet({ prefix: 'image' }));
      socketGroup = (await stat(daemon.socket!)).gid;
    }, 300_000);
    afterAll(async () => {
      await daemon?.stop();
      if (temp) await rm(temp, { recursive: true, force: true });
    }, 60_000);

    it('builds with the legacy builder from the local base: the command as entrypoint, a non-root user', async () => {
      const context = await packContext();
      const build = await daemon.cli(['build', '--network', 'none', '-f', dockerfile, '-t', tag, context], {
        env: { DOCKER_BUILDKIT: '0' },
        timeoutMs: 300_000,
      });
      expect({ code: build.code, stderr: build.stderr }).toMatchObject({ code: 0 });
      const image = await daemon.docker.getImage(tag).inspect();
      expect(image.Config.Entrypoint).toEqual(['node', '/opt/safe-docker-prune/dist/cli.js']);
      expect(image.Config.User).toBe('1000:1000');
      // Built on the stand-in: its layer first, and nothing was pulled (there is nowhere to pull from).
      const base = await daemon.docker.getImage(from).inspect();
      expect(image.RootFS.Layers?.[0]).toBe(base.RootFS.Layers?.[0]);

      const version = await daemon.cli(['run', '--rm', '--network', 'none', tag, '--version']);
      expect({ code: version.code, stdout: version.stdout }).toEqual({
        code: 0,
        stdout: `safe-docker-prune ${pkg.version}\n`,
      });
    }, 300_000);

    it('run with the daemon socket mounted, reports its images and removes nothing', async () => {
      const before = await imageState(daemon.docker);
      const info = await daemon.docker.info();
      const docker = [
        ...['run', '--rm', '--network', 'none', '--group-add', String(socketGroup)],
        ...['-v', `${daemon.socket}:/var/run/docker.sock`, tag],
        ...['--mode', 'report', '--images', 'unused', '--min-age', '0', '--runner-images-min-age', '0'],
      ];
      const json = await daemon.cli([...docker, '--json']);
      expect({ code: json.code, stderr: json.stderr }).toMatchObject({ code: 0 });
      const report = JSON.parse(json.stdout);
      expect(report.mode).toBe('report');
      expect(report.daemon).toMatchObject({ host: 'unix:///var/run/docker.sock', id: info.ID });
      const states = (report.images as { tags: string[]; state: string }[]).map((i) => i.state);
      expect(states).toContain('would-remove');
      expect(states).toContain('kept');
      expect(states).not.toContain('removed');

      const text = await daemon.cli(docker);
      expect({ code: text.code, stderr: text.stderr }).toMatchObject({ code: 0 });
      expect(text.stdout).toContain('safe-docker-prune: report (nothing was removed)');
      expect(await imageState(daemon.docker)).toEqual(before);
    }, 300_000);

    it('cannot reach the daemon without the socket group: the non-root user is what runs it', async () => {
      const denied = await daemon.cli([
        ...['run', '--rm', '--network', 'none', '-v', `${daemon.socket}:/var/run/docker.sock`, tag],
        ...['--mode', 'report'],
      ]);
      // Exit 3: the daemon cannot be reached (permission denied on the socket), unless the socket is
      // open to everyone, which a daemon's socket never is.
      expect({ code: denied.code, mode: (await stat(daemon.socket!)).mode & 0o007 }).toEqual({
        code: 3,
        mode: 0,
      });
      expect(denied.stdout + denied.stderr).toMatch(/EACCES|permission denied/i);
    }, 120_000);
  },
  ['run-containers', 'legacy-build', 'unix-socket', 'docker'],
);
