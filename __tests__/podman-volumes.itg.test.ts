// Volumes on Podman: its `/system/df` lists each volume with an empty driver and no labels, so the action
// takes those from `/volumes` (see podmanDiskUsage). With `volumes: anonymous` on Podman 4.3 (API 1.41,
// before Docker's anonymous label) an unused volume with a generated name goes; a named one and one a
// container mounts stay. Before, every Podman volume was kept as `not-local` (driver "").
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { runAction } from './support/action';
import { describeDocker, startDaemon, type PrivateDaemon } from './support/daemon';
import { busyboxImage, clearDaemon, loadImages } from './support/fleet';

const LONG = 120_000;
let daemon: PrivateDaemon;

beforeAll(async () => {
  daemon = (await startDaemon('podman-volumes'))!;
}, LONG);
afterAll(async () => daemon?.stop());

describeDocker(
  'volumes on Podman',
  () => {
    it(
      'an unused volume with a generated name goes; a named one and a mounted one stay',
      async () => {
        await clearDaemon(daemon.docker);
        await loadImages(daemon.docker, [busyboxImage('pv/busybox:1')]);
        const generated = await (await daemon.docker.createVolume({})).inspect();
        const mounted = await (await daemon.docker.createVolume({})).inspect();
        await daemon.docker.createVolume({ Name: 'pv-data', Labels: { team: 'db' } });
        expect(generated.Name).toMatch(/^[0-9a-f]{64}$/);
        expect(generated.Driver).toBe('local');
        await daemon.docker.createContainer({
          name: 'pv-user',
          Image: 'pv/busybox:1',
          Cmd: ['/bin/busybox', 'true'],
          HostConfig: { Binds: [`${mounted.Name}:/data`], NetworkMode: 'none' },
        });

        const run = await runAction({
          host: daemon.host,
          inputs: { mode: 'prune', images: 'none', volumes: 'anonymous' },
        });
        expect(run.code).toBe(0);
        const volumes = (
          run.report.objects as { kind: string; name: string; state: string; reason: string }[]
        )
          .filter((o) => o.kind === 'volume')
          .map((o) => [o.name, o.state, o.reason]);
        // Before API 1.42 (Podman 4.3) a generated name is what marks a volume anonymous; from 1.42 on
        // (Podman 5.8) only Docker's anonymous label does, which a volume created through the API lacks.
        const byName = Number(daemon.apiVersion.split('.')[1]) < 42;
        expect(volumes.sort()).toEqual(
          [
            [generated.Name, ...(byName ? ['removed', 'remove'] : ['kept', 'named'])],
            [mounted.Name, 'kept', byName ? 'in-use' : 'named'],
            ['pv-data', 'kept', 'named'],
          ].sort(),
        );
        const left = ((await daemon.docker.listVolumes()).Volumes ?? []).map((v) => v.Name).sort();
        expect(left).toEqual([...(byName ? [] : [generated.Name]), mounted.Name, 'pv-data'].sort());
      },
      LONG,
    );
  },
  ['podman'],
);
