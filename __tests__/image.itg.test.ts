// The container image of deploy/container/Dockerfile, built and run for real without a registry: a
// stand-in for its base image (FROM node:24-slim) is made on the spot in a private daemon from a root
// filesystem holding only a Node 24 binary (SDP_NODE, as CI downloads it, else this Node) and the shared
// libraries ldd lists for it, imported under the Dockerfile's exact FROM name; the real Dockerfile is
// built against that daemon with the legacy builder (which uses the local base, never pulls) from a
// context of what `npm pack` ships; then the image runs with the private daemon's socket mounted, in
// report mode, and must report that daemon's images and remove nothing. Then it runs as
// deploy/kubernetes/daemonset.yaml runs it (its args, env, user and mounts; a read-only root and a /tmp of
// its own), writing its metrics into a textfile directory that Debian's node_exporter then serves: every
// series the file holds comes back with its value. The image does not depend on
// the engine that runs it: checked on docker20 only, as the npm package is (pack.itg.test.ts).
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { collectRun, recordRun, repoRoot } from './support/action';
import { currentEngine, describeDocker, startDaemon, type PrivateDaemon } from './support/daemon';
import { imageState, loadFleet, sampleFleet } from './support/fleet';

// A real YAML parser, from the js-yaml package eslint already brings (as docs.test.ts uses it).
const yaml = createRequire(__filename)('js-yaml') as { load(text: string): unknown };

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

/** node_exporter as Debian packages it (prometheus-node-exporter). */
const NODE_EXPORTER = '/usr/bin/prometheus-node-exporter';

interface DaemonSetPod {
  securityContext: { runAsUser: number; runAsGroup: number };
  containers: {
    args: string[];
    env: { name: string; value: string }[];
    volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  }[];
}

/** deploy/kubernetes/daemonset.yaml's pod. */
async function daemonSetPod(): Promise<DaemonSetPod> {
  const text = await readFile(path.join(root, 'deploy/kubernetes/daemonset.yaml'), 'utf8');
  return (yaml.load(text) as { spec: { template: { spec: DaemonSetPod } } }).spec.template.spec;
}

/** `name{labels}` (labels sorted) to value, of every safe_docker_prune_* sample in Prometheus text. */
function series(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [, name, labels, value] of text.matchAll(/^(safe_docker_prune_\w+)\{(.*)\} (\S+)$/gm)) {
    const sorted = [...labels.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => `${m[1]}="${m[2]}"`).sort();
    out.set(`${name}{${sorted.join(',')}}`, Number(value));
  }
  return out;
}

/** The port node_exporter says it listens on (it binds 127.0.0.1:0, so the kernel picked a free one). */
function listeningPort(exporter: ChildProcess): Promise<number | undefined> {
  return new Promise((resolve) => {
    let said = '';
    exporter.stderr!.on('data', (chunk) => {
      said += chunk;
      const port = /msg="Listening on" address=127\.0\.0\.1:(\d+)/.exec(said)?.[1];
      if (port) resolve(Number(port));
    });
    exporter.once('close', () => resolve(undefined));
  });
}

/** Polls `check` every 200 ms until it gives a value, up to `tries` times. */
async function poll<T>(check: () => Promise<T | undefined>, tries: number): Promise<T | undefined> {
  for (let i = 0; i < tries; i++) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return undefined;
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

    it('runs as the DaemonSet runs it (its args, user, read-only root, /tmp, mounts); node_exporter reads its metrics', async () => {
      const pod = await daemonSetPod();
      const [container] = pod.containers;
      const mountOf = (name: string) => container.volumeMounts.find((m) => m.name === name)!.mountPath;
      // The node's textfile directory, prepared as docs/fleet.md says (writable by gid 1000).
      const textfile = path.join(temp, 'textfile');
      await mkdir(textfile, { mode: 0o775 });
      await chown(textfile, 0, pod.securityContext.runAsGroup);
      await chmod(textfile, 0o775);
      const name = 'sdp-daemonset';
      const started = await daemon.cli([
        ...['run', '-d', '--name', name, '--network', 'none', '--read-only', '--tmpfs', '/tmp'],
        ...['--user', `${pod.securityContext.runAsUser}:${pod.securityContext.runAsGroup}`],
        ...['--group-add', String(socketGroup), '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges'],
        ...container.env.flatMap((e) => ['-e', `${e.name}=${e.value}`]),
        ...['-v', `${daemon.socket}:${mountOf('docker-socket')}`, '-v', `${textfile}:${mountOf('textfile')}`],
        // The data root at its own path, read-only, as the manifest mounts the node's /var/lib/docker.
        ...['-v', `${daemon.dataRoot}:${daemon.dataRoot}:ro`],
        ...['-e', 'SAFE_DOCKER_PRUNE_MIN_AGE=0', '-e', 'SAFE_DOCKER_PRUNE_RUNNER_IMAGES_MIN_AGE=0'],
        tag,
        ...container.args,
      ]);
      expect({ code: started.code, stderr: started.stderr }).toMatchObject({ code: 0 });
      const metricsFile = path.join(textfile, 'safe_docker_prune.prom');
      // The first pass of the loop writes the file; the loop then waits for its next interval.
      const metrics = await poll(() => readFile(metricsFile, 'utf8'), 600);
      const stopped = await daemon.cli(['stop', '-t', '120', name], { timeoutMs: 180_000 });
      const state = (await daemon.docker.getContainer(name).inspect()).State;
      const logs = await daemon.cli(['logs', name]);
      await daemon.cli(['rm', '-f', name]);
      expect({ stopped: stopped.code, exit: state.ExitCode, logs: logs.stderr.slice(-2000) }).toMatchObject({
        stopped: 0,
        exit: 0,
      });
      expect(metrics).toMatch(
        /^safe_docker_prune_success\{daemon="unix:\/\/\/var\/run\/docker.sock",mode="report"\} 1$/m,
      );
      expect(metrics).toMatch(/^safe_docker_prune_disk_free_bytes\{daemon="[^"]*",when="before"\} \d+$/m);
      expect(metrics).toMatch(/^safe_docker_prune_removed\{[^}]*kind="images"\} [1-9]\d*$/m);
      expect((await stat(metricsFile)).uid).toBe(pod.securityContext.runAsUser);

      // node_exporter's textfile collector on that directory, read back over HTTP.
      if (spawnSync('test', ['-x', NODE_EXPORTER]).status !== 0) {
        const why = `${NODE_EXPORTER} is missing (apt-get install prometheus-node-exporter)`;
        if (process.env.SDP_REQUIRE_DOCKER === '1') throw new Error(why);
        console.warn(`${why}: the metrics file was not read back through node_exporter`);
        return;
      }
      const exporter = spawn(NODE_EXPORTER, [
        ...['--collector.disable-defaults', '--collector.textfile'],
        ...[`--collector.textfile.directory=${textfile}`, '--web.listen-address=127.0.0.1:0'],
      ]);
      const listening = listeningPort(exporter);
      const exited = collectRun(exporter, 'prometheus-node-exporter');
      try {
        const port = await listening;
        expect(port).toBeDefined();
        const scraped = await poll(async () => {
          const res = await fetch(`http://127.0.0.1:${port}/metrics`);
          return res.ok ? res.text() : undefined;
        }, 150);
        expect(scraped).toMatch(/^node_textfile_scrape_error 0$/m);
        // node_exporter sorts the labels and writes numbers its own way: compare series and values.
        const ours = series(metrics!);
        expect(ours.size).toBeGreaterThan(10);
        const theirs = series(scraped!);
        for (const [key, value] of ours) expect([key, theirs.get(key)]).toEqual([key, value]);
      } finally {
        exporter.kill('SIGTERM');
        await exited;
      }
    }, 300_000);
  },
  ['run-containers', 'legacy-build', 'unix-socket', 'docker'],
);
