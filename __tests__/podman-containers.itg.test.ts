// Podman's containers' writable-layer sizes read from its store's files (src/engine/podman-containers.ts)
// against the `SizeRw` its sized container list gives, container by container, on containers that wrote
// what the walk must count as Podman does: a file and two hard links to it (counted once), a symlink (its
// target's length), an empty file, a sparse file (its apparent size), nested folders, a file deleted from
// the image (a whiteout), and one that wrote nothing. On Podman 4.3 the action
// then lists the containers without sizes; on 5.8, which sizes a container otherwise and answers quickly,
// it asks the sized list.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type Dockerode from 'dockerode';
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  linkSync,
  mkdirSync,
  openSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { runAction } from './support/action';
import { describeDocker, startDaemon, type PrivateDaemon } from './support/daemon';
import { busyboxImage, clearDaemon, loadImages } from './support/fleet';
import { startFaultProxy } from './support/proxy';
import { readContainerSizes, sizesReadable } from '../src/engine/podman-containers';

const LONG = 180_000;
let daemon: PrivateDaemon;

beforeAll(async () => {
  daemon = (await startDaemon('podman-containers'))!;
}, LONG);
afterAll(async () => daemon?.stop());

/**
 * A created container whose writable layer holds what `write` puts in its upper folder. Podman cannot start
 * a container on these machines (FACTS.md), so the test writes there as root what a process in it would.
 */
async function container(name: string, write: (upper: string) => void = () => undefined) {
  const created = await daemon.docker.createContainer({
    name,
    Image: 'pcs/busybox:1',
    Cmd: ['/bin/busybox', 'true'],
    HostConfig: { NetworkMode: 'none' },
  });
  const inspect = (await created.inspect()) as { GraphDriver?: { Data?: { UpperDir?: string } } };
  const upper = inspect.GraphDriver?.Data?.UpperDir;
  expect(upper && statSync(upper).isDirectory()).toBe(true);
  write(upper!);
  return created;
}

/** A file and two hard links to it, a symlink, an empty file, a sparse file, nested folders, a whiteout. */
function wrote(upper: string): void {
  mkdirSync(join(upper, 'w/a/b/c'), { recursive: true });
  writeFileSync(join(upper, 'w/a/file'), Buffer.alloc(5000, 1));
  linkSync(join(upper, 'w/a/file'), join(upper, 'w/a/b/link1'));
  linkSync(join(upper, 'w/a/file'), join(upper, 'w/link2'));
  symlinkSync('/some/where/far/away', join(upper, 'w/a/b/c/symlink'));
  writeFileSync(join(upper, 'w/empty'), '');
  const sparse = openSync(join(upper, 'w/sparse'), 'w');
  writeSync(sparse, 'x', 1_048_575);
  closeSync(sparse);
  writeFileSync(join(upper, 'w/a/b/c/deep'), 'hello\n');
  // A file deleted from the image: overlay's whiteout, a character device 0/0.
  mkdirSync(join(upper, 'etc'));
  const mknod = spawnSync('mknod', [join(upper, 'etc/passwd'), 'c', '0', '0']);
  expect(mknod.status).toBe(0);
}

/** The containers with their sizes, as the service's sized list gives them. */
const sizedList = async () =>
  (await daemon.docker.listContainers({ all: true, size: true })) as (Dockerode.ContainerInfo & {
    SizeRw?: number;
  })[];

describeDocker(
  "Podman's containers' sizes from its store's files",
  () => {
    it(
      "equal the sized list's, and the action lists without sizes where it reads them",
      async () => {
        await clearDaemon(daemon.docker);
        await loadImages(daemon.docker, [busyboxImage('pcs/busybox:1')]);
        await container('pcs-wrote', wrote);
        await container('pcs-small', (upper) => writeFileSync(join(upper, 'x'), 'x\n'));
        await container('pcs-created');

        const sized = await sizedList();
        expect(sized).toHaveLength(3);
        // A size of 0 is left out of the list (omitempty).
        const api = new Map(sized.map((c) => [c.Id, c.SizeRw ?? 0]));
        // What the containers wrote: the file once, the sparse file's apparent size, the rest small.
        const sizeOf = (name: string) => api.get(sized.find((c) => c.Names.includes(`/${name}`))!.Id);
        expect(sizeOf('pcs-wrote')).toBe(5000 + 20 + 1_048_576 + 6);
        expect([sizeOf('pcs-small'), sizeOf('pcs-created')]).toEqual([2, 0]);

        const info = (await daemon.docker.info()) as {
          DockerRootDir: string;
          Driver: string;
          DriverStatus: [string, string][];
        };
        const version = (await daemon.docker.version()) as {
          Components?: { Name: string; Version: string }[];
        };
        const podman = version.Components!.find((c) => /podman/i.test(c.Name))!.Version;
        const readable = sizesReadable({
          version: podman,
          rootDir: info.DockerRootDir,
          driver: info.Driver,
          driverStatus: info.DriverStatus,
        });
        // Podman before 4.6 (Debian 12's 4.3) sizes the writable layer by the walk this reader does.
        expect(readable).toBe(Number(podman.split('.')[0]) < 5);
        if (readable) {
          const files = await readContainerSizes(info.DockerRootDir, info.Driver, [...api.keys()]);
          expect(files).toEqual(api);
        }

        // The action as root: no sized list where the files size the containers.
        const proxy = await startFaultProxy(daemon.socket);
        const run = await runAction({ host: proxy.host, inputs: { mode: 'report', containers: 'stopped' } });
        await proxy.close();
        expect(run.code).toBe(0);
        const lists = proxy.log
          .map((e) => e.path.replace(/^\/v[\d.]+/, ''))
          .filter((path) => path.startsWith('/containers/json'));
        expect(lists.filter((path) => /size=(1|true)/.test(path))).toHaveLength(readable ? 0 : 1);
        const rows = run.report.objects as { kind: string; id: string; size: number }[];
        const reported = new Map(rows.filter((o) => o.kind === 'container').map((o) => [o.id, o.size]));
        for (const [id, size] of api) expect([id, reported.get(id)]).toEqual([id, size]);
      },
      LONG,
    );
  },
  ['podman'],
);
