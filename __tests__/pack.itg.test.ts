// The npm package as a user gets it: `npm pack` of this repository (dist/ as test.sh just built it),
// installed into an empty folder with no registry at all (its own empty cache, --offline: the bundle needs
// no dependency), then the installed `safe-docker-prune` run through its bin link: --help, --version, and
// a report of a private daemon this test starts, which must name that daemon and its images. The command
// is always given that daemon's host, in an environment without the caller's DOCKER_HOST: no other
// daemon is ever asked. The package does not depend on the engine: it runs on docker20 only.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { collectRun, repoRoot } from './support/action';
import { currentEngine, describeDocker, startDaemon, type PrivateDaemon } from './support/daemon';
import { imageState, loadFleet, sampleFleet } from './support/fleet';

const root = repoRoot();
const ENGINE = 'docker20';
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
let temp: string;
let app: string;
let daemon: PrivateDaemon;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A clean environment: PATH with the test's own node first (the bin's `#!/usr/bin/env node` finds it),
 * HOME and TMPDIR in the test's folder, no npm_config_* or DOCKER_* of the caller's; plus `env`.
 */
function cleanEnv(env: Record<string, string> = {}): Record<string, string> {
  const node = process.env.SDP_NODE ?? process.execPath;
  return {
    PATH: `${path.dirname(node)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: temp,
    TMPDIR: temp,
    ...env,
  };
}

function run(
  command: string,
  args: string[],
  opts: { cwd: string; env?: Record<string, string> },
): Promise<Run> {
  const child = spawn(command, args, { cwd: opts.cwd, env: cleanEnv(opts.env) });
  return collectRun(child, `${path.basename(command)} ${args.join(' ')}`);
}

/** npm with a cache of its own in the test's folder (empty: nothing can come from it) and no registry. */
const npm = (args: string[], cwd: string) =>
  run('npm', [...args, '--offline', '--cache', path.join(temp, 'npm-cache'), '--no-audit', '--no-fund'], {
    cwd,
  });

/** The installed command, through the bin link npm made, as a user's shell runs it. */
const command = (args: string[], env: Record<string, string> = {}) =>
  run(path.join(app, 'node_modules', '.bin', 'safe-docker-prune'), args, {
    cwd: app,
    env: { SAFE_DOCKER_PRUNE_MIN_AGE: '0', SAFE_DOCKER_PRUNE_RUNNER_IMAGES_MIN_AGE: '0', ...env },
  });

describeDocker('the npm package, installed from its tarball with no registry', () => {
  if (currentEngine() !== ENGINE) {
    it.skip(`[skipped on ${currentEngine()}: the package is engine-independent, checked on ${ENGINE}]`, () =>
      Promise.resolve());
    return;
  }

  let packed: { filename: string; files: { path: string }[] };

  beforeAll(async () => {
    temp = await mkdtemp(path.join(tmpdir(), 'sdp-pack-'));
    app = path.join(temp, 'app');
    await mkdir(app);
    // An empty project to install into, so npm looks no further up for one.
    await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    const [pack, started] = await Promise.all([
      npm(['pack', '--json', '--pack-destination', temp], root),
      startDaemon('pack'),
    ]);
    daemon = started!;
    expect({ code: pack.code, stderr: pack.stderr }).toMatchObject({ code: 0 });
    packed = JSON.parse(pack.stdout)[0];
    await loadFleet(daemon.docker, sampleFleet({ prefix: 'pack' }));
  }, 180_000);
  afterAll(async () => {
    await daemon?.stop();
    if (temp) await rm(temp, { recursive: true, force: true });
  }, 60_000);

  it('packs the command and its chunks, not the action or the sources', () => {
    const files = packed.files.map((f) => f.path).sort();
    expect(packed.filename).toBe(`safe-docker-prune-${pkg.version}.tgz`);
    expect(files).toEqual(
      expect.arrayContaining(['package.json', 'README.md', 'CHANGELOG.md', 'LICENSE', 'dist/cli.js']),
    );
    expect(
      files.filter(
        (f) => !/^(dist\/(cli\.js|\d+\.index\.js|licenses\.txt)|package\.json|\w+\.md|LICENSE)$/.test(f),
      ),
    ).toEqual([]);
  });

  it('installs offline with nothing but itself; --help and --version run through the bin link', async () => {
    const install = await npm(['install', path.join(temp, packed.filename)], app);
    expect({ code: install.code, stderr: install.stderr }).toMatchObject({ code: 0 });
    const installed = (await readdir(path.join(app, 'node_modules'))).filter((f) => !f.startsWith('.'));
    expect(installed).toEqual(['safe-docker-prune']);

    const help = await command(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--keep-recent N');
    expect(help.stdout).toContain('--docker-host');
    const version = await command(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout).toBe(`safe-docker-prune ${pkg.version}\n`);
  }, 120_000);

  it("reports the private daemon it is given: that daemon's host, ID and images; removes nothing", async () => {
    const before = await imageState(daemon.docker);
    const info = await daemon.docker.info();
    const report = await command(
      ['--mode', 'report', '--json', '--images', 'unused', '--docker-host', daemon.host],
      daemon.env,
    );
    expect(report.code).toBe(0);
    const json = JSON.parse(report.stdout);
    expect(json.mode).toBe('report');
    expect(json.daemon).toMatchObject({
      host: daemon.host,
      id: info.ID,
      version: daemon.version,
      apiVersion: daemon.apiVersion,
    });
    // Every image the daemon lists is in the report with its tags, and the report names no other.
    const ids = new Set(before.map((i) => i.id));
    const reported = new Map<string, string[]>(
      json.images.map((i: { id: string; tags: string[] }) => [i.id, [...i.tags].sort()]),
    );
    for (const id of reported.keys()) expect(ids.has(id)).toBe(true);
    for (const image of before.filter((i) => i.tags.length))
      expect(reported.get(image.id)).toEqual(image.tags);
    expect(json.images.some((i: { state: string }) => i.state === 'would-remove')).toBe(true);
    expect(json.images.some((i: { state: string }) => i.state === 'kept')).toBe(true);
    expect(await imageState(daemon.docker)).toEqual(before);
  }, 120_000);
});
