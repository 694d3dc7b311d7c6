// Stale buildx builders on a real daemon. No registry is reachable here, so moby/buildkit cannot be
// pulled and no real docker-container builder can start: the builder containers are busybox containers
// named as buildx names them (`buildx_buildkit_<builder>0`, state volume `<name>_state`), idle (one
// process, as buildkitd idles) or busy (several). buildx itself (Debian's docker-buildx plugin, from
// the engine cache) registers builders without starting them, so `docker buildx ls` lists them.
import type Dockerode from 'dockerode';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { runAction } from './support/action';
import {
  describeDocker,
  engineCache,
  envForHost,
  itWith,
  startDaemon,
  type PrivateDaemon,
} from './support/daemon';
import { busyboxImage, clearDaemon, loadImages } from './support/fleet';

const IMAGE = 'moby/buildkit:buildx-stable-1';
const B = (builder: string) => `buildx_buildkit_${builder}0`;
/** Debian's docker CLI with its buildx plugin (scripts/engines.sh unpacks it for the newer engines). */
const SID = join(engineCache(), 'docker-sid', 'usr');
const HAVE_BUILDX = existsSync(join(SID, 'libexec/docker/cli-plugins/docker-buildx'));

let daemon: PrivateDaemon;
let temp: string;

/** A builder-like container: idle runs one process, busy several, exited ran and stopped. */
async function builder(name: string, state: 'idle' | 'busy' | 'exited', stateVolume = true): Promise<void> {
  const script =
    state === 'busy' ? 'sleep 3600 & sleep 3600 & wait' : state === 'idle' ? 'exec sleep 3600' : 'true';
  const container = await daemon.docker.createContainer({
    name,
    Image: IMAGE,
    Cmd: [
      '/bin/busybox',
      'sh',
      '-c',
      `export PATH=/bin; /bin/busybox --install -s /bin 2>/dev/null; ${script}`,
    ],
    HostConfig: {
      NetworkMode: 'none',
      Binds: stateVolume ? [`${name}_state:/var/lib/buildkit`] : [],
    },
  });
  await container.start();
  if (state === 'exited') await container.wait();
  else await settled(container, state === 'idle' ? 1 : 3);
}

/**
 * Until the container runs `count` processes: its shell installs busybox's links before it sleeps, and a
 * builder the action looks at during that install counts as busy (seen on a loaded machine).
 */
async function settled(container: Dockerode.Container, count: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const top = (await container.top()) as { Processes?: string[][] };
    if ((top.Processes ?? []).length === count) return;
    await sleep(50);
  }
  throw new Error(`container ${container.id} never settled to ${count} process(es)`);
}

async function names(): Promise<{ containers: string[]; volumes: string[] }> {
  const containers = (await daemon.docker.listContainers({ all: true }))
    .map((c) => c.Names[0].slice(1))
    .sort();
  const volumes = ((await daemon.docker.listVolumes()).Volumes ?? []).map((v) => v.Name).sort();
  return { containers, volumes };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeDocker(
  'stale buildx builders on a real daemon',
  () => {
    beforeAll(async () => {
      daemon = (await startDaemon('buildx'))!;
      temp = await mkdtemp(join(tmpdir(), 'sdp-buildx-'));
    }, 60_000);
    afterAll(async () => {
      await daemon?.stop();
      if (temp) await rm(temp, { recursive: true, force: true });
    }, 60_000);
    beforeEach(async () => {
      await clearDaemon(daemon.docker);
      for (const v of (await daemon.docker.listVolumes()).Volumes ?? [])
        await daemon.docker.getVolume(v.Name).remove();
      await loadImages(daemon.docker, [busyboxImage(IMAGE)]);
    }, 60_000);

    it('removes idle and stopped old builders with their state volumes; never a busy, current, protected or new one', async () => {
      await builder(B('killed'), 'idle');
      await builder(B('stopped'), 'exited');
      await builder(B('busy'), 'busy');
      await builder(B('current'), 'idle');
      await builder(B('guarded'), 'idle');
      await daemon.docker.createContainer({
        name: 'other',
        Image: IMAGE,
        HostConfig: { Binds: ['data:/data'] },
      });
      // Creation times are whole seconds: a cutoff a clear second after the others and before the fresh one.
      await sleep(1500);
      const cutoff = String(Math.floor(Date.now() / 1000));
      await sleep(1500);
      await builder(B('fresh'), 'idle');
      const before = await names();
      expect(before.volumes).toContain(`${B('killed')}_state`);

      const result = await runAction({
        host: daemon.host,
        inputs: { mode: 'prune', 'buildx-builders': 'stale', 'older-than': cutoff, protect: B('guarded') },
        // No buildx here: an empty docker configuration and a PATH without a docker CLI.
        env: { BUILDX_BUILDER: 'current', DOCKER_CONFIG: join(temp, 'none'), PATH: '/nonexistent' },
      });
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/buildx builders: no listing from this host's buildx/);
      const after = await names();
      expect(after.containers).toEqual([B('busy'), B('current'), B('fresh'), B('guarded'), 'other'].sort());
      expect(after.volumes).toEqual(
        before.volumes.filter((v) => v !== `${B('killed')}_state` && v !== `${B('stopped')}_state`),
      );
      const objects = Object.fromEntries(
        (result.report.objects as { name: string; state: string; reason: string; detail: string }[]).map(
          (o) => [o.name, `${o.state}:${o.reason}`],
        ),
      );
      expect(objects).toMatchObject({
        [B('killed')]: 'removed:remove',
        [B('stopped')]: 'removed:remove',
        [`${B('killed')}_state`]: 'removed:remove',
        [`${B('stopped')}_state`]: 'removed:remove',
        [B('busy')]: 'kept:running',
        [B('current')]: 'kept:in-use',
        [B('guarded')]: 'kept:protected',
        [B('fresh')]: 'kept:too-recent',
      });
      expect(result.outputs['removed-containers']).toBe('2');
      expect(result.outputs['removed-volumes']).toBe('2');
    }, 120_000);

    it('report mode changes nothing; buildx-builders: none (the default) touches no builder', async () => {
      await builder(B('killed'), 'idle');
      await builder(B('stopped'), 'exited');
      await sleep(1500);
      const before = await names();
      const report = await runAction({
        host: daemon.host,
        inputs: { mode: 'report', 'buildx-builders': 'stale', 'older-than': '1s' },
        env: { PATH: '/nonexistent' },
      });
      expect(report.code).toBe(0);
      expect(report.outputs['removed-containers']).toBe('2');
      expect(await names()).toEqual(before);
      const off = await runAction({ host: daemon.host, inputs: { mode: 'prune', 'older-than': '1s' } });
      expect(off.code).toBe(0);
      expect(await names()).toEqual(before);
    }, 120_000);

    // buildx will not create a builder from TLS variables (it wants a docker context): unix sockets only.
    (HAVE_BUILDX ? itWith.bind(null, ['unix-socket']) : it.skip)(
      `with buildx on the host: the builder buildx calls current stays, the ones it knows are named${HAVE_BUILDX ? '' : ' [skipped: no docker-buildx in the engine cache; run scripts/engines.sh docker-sid]'}`,
      async () => {
        const bin = join(temp, 'bin');
        const config = join(temp, 'docker-config');
        await mkdir(join(config, 'cli-plugins'), { recursive: true });
        await mkdir(bin, { recursive: true });
        if (!existsSync(join(bin, 'docker'))) await symlink(join(SID, 'bin/docker'), join(bin, 'docker'));
        const plugin = join(config, 'cli-plugins', 'docker-buildx');
        if (!existsSync(plugin)) await symlink(join(SID, 'libexec/docker/cli-plugins/docker-buildx'), plugin);
        const env = { ...envForHost(daemon.host), DOCKER_CONFIG: config, PATH: `${bin}:${process.env.PATH}` };
        const buildx = (...args: string[]) => {
          const r = spawnSync(join(bin, 'docker'), ['buildx', ...args], {
            env: { ...process.env, ...env, DOCKER_HOST: daemon.host },
            encoding: 'utf8',
          });
          if (r.status !== 0) throw new Error(`docker buildx ${args.join(' ')}: ${r.stderr}`);
        };
        // Registered, never started (that would pull moby/buildkit).
        buildx('create', '--name', 'ci-killed', '--driver', 'docker-container');
        buildx('create', '--name', 'mine', '--driver', 'docker-container', '--use');
        await builder(B('ci-killed'), 'idle');
        await builder(B('mine'), 'idle');
        await builder(B('orphan'), 'idle');
        await sleep(1500);

        const result = await runAction({
          host: daemon.host,
          inputs: { mode: 'prune', 'buildx-builders': 'stale', 'older-than': '1s' },
          env,
        });
        expect(result.code).toBe(0);
        expect(result.stdout).toMatch(/buildx knows [^\n]*ci-killed/);
        expect((await names()).containers).toEqual([B('mine')]);
        const details = Object.fromEntries(
          (result.report.objects as { name: string; detail: string }[]).map((o) => [o.name, o.detail]),
        );
        expect(details[B('ci-killed')]).toBe('stale buildx builder ci-killed (idle, known to buildx)');
        expect(details[B('orphan')]).toBe('stale buildx builder orphan (idle, unknown to buildx)');
        expect(details[B('mine')]).toBe("the current job's buildx builder mine");
      },
      120_000,
    );
  },
  ['run-containers'],
);
