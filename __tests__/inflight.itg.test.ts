// A shared host: jobs in flight on one daemon while cleanups run. Loops behave like real jobs (load or
// build an image, wait for a later step, then create and start a container from it; move a tag with a new
// build; the runner building a Dockerfile action's image at job setup). The action prunes again and again
// meanwhile with a grace period: not one job may fail, and nothing protected or in use may lose a tag. The
// engine's own `image prune -a` in the same harness breaks them. Also on a real daemon: keep-recent's
// ranking of same-second builds and of reproducible builds stamped 1980, and swarm services' images.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAction } from './support/action';
import { describeDocker, itWith, startDaemon, type PrivateDaemon } from './support/daemon';
import { busyboxImage, clearDaemon, listAllImages, loadImages, type ImageSpec } from './support/fleet';

let daemon: PrivateDaemon;
let stateDir: string;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const LONG = 240_000;
/** The grace period of these runs: long enough for a job's wait between its load and its run. */
const GRACE_S = 12;

beforeAll(async () => {
  daemon = (await startDaemon('inflight'))!;
  stateDir = mkdtempSync(join(tmpdir(), 'sdp-inflight-'));
}, LONG);
afterAll(async () => {
  await daemon?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

/** An image of its own (a unique label) over the shared busybox layer, created now as a build would be. */
function jobImage(tags: string[], name: string): ImageSpec {
  return { ...busyboxImage('x'), tags, name, created: new Date(), labels: { 'sdp.job': name } };
}

interface Job {
  name: string;
  /** The image's reference (a tag, or the ID for an untagged build) and the ID it must run. */
  prepare(i: number): Promise<{ ref: string; id: string }>;
}

/** Each job: prepare an image, wait like a job between steps, then run a container from the reference. */
async function runJobs(jobs: Job[], rounds: number): Promise<string[]> {
  const failures: string[] = [];
  await Promise.all(
    jobs.map(async (job) => {
      for (let i = 0; i < rounds; i++) {
        let made: { ref: string; id: string };
        try {
          made = await job.prepare(i);
        } catch (error) {
          // A load or build that a prune broke while it was in flight (moby#53321 on the containerd store).
          failures.push(`${job.name} #${i}: preparing: ${(error as Error).message}`);
          continue;
        }
        const { ref, id } = made;
        await sleep(1500 + ((i * 700) % 1500));
        try {
          const container = await daemon.docker.createContainer({
            Image: ref,
            Cmd: ['/bin/busybox', 'true'],
            HostConfig: { NetworkMode: 'none' },
            Labels: { 'sdp.job': job.name },
          });
          const got = (await container.inspect()).Image;
          if (got !== id)
            failures.push(`${job.name} #${i}: ${ref} ran ${got}, not the image it made (${id})`);
          if (daemon.canRunContainers) {
            await container.start();
            await container.wait();
          }
        } catch (error) {
          failures.push(`${job.name} #${i}: ${ref}: ${(error as Error).message}`);
        }
      }
    }),
  );
  return failures;
}

const load = async (spec: ImageSpec) => (await loadImages(daemon.docker, [spec])).get(spec.name!)!;
const JOBS: Job[] = [
  // docker pull app:N (here: load), later docker run app:N
  {
    name: 'pull',
    prepare: async (i) => ({
      ref: `job/pull:${i}`,
      id: await load(jobImage([`job/pull:${i}`], `pull-${i}`)),
    }),
  },
  // a build that moves job/app:latest over the previous build, later docker run job/app:latest
  {
    name: 'retag',
    prepare: async (i) => ({
      ref: 'job/app:latest',
      id: await load(jobImage(['job/app:latest'], `retag-${i}`)),
    }),
  },
  // docker build -q, later docker run <ID>: an untagged image
  {
    name: 'untagged',
    prepare: async (i) => {
      const id = await load(jobImage([], `untagged-${i}`));
      return { ref: id, id };
    },
  },
  // the runner builds a Dockerfile action's image at job setup and runs it steps later
  {
    name: 'runner',
    prepare: async (i) => {
      const tag = `0a1b2c:${i.toString(16).padStart(32, '0')}`;
      return { ref: tag, id: await load(jobImage([tag], `runner-${i}`)) };
    },
  },
];

/** Tags of every image, by ID. */
async function tagsById(): Promise<Map<string, string[]>> {
  const images = await listAllImages(daemon.docker);
  // Podman lists local names under localhost/ (loaded; tagged through the API on 4.3) or docker.io/ (tagged
  // through the API on 5.8), both of which Docker's own listing leaves out.
  const tagsOf = (i: { RepoTags?: string[] | null }) =>
    (i.RepoTags ?? [])
      .filter((t) => t !== '<none>:<none>')
      .map((t) => t.replace(/^(localhost|docker\.io)\//, ''));
  return new Map(images.map((i) => [i.Id, tagsOf(i).sort()]));
}

/** The loads in flight an engine itself fails when any image is deleted meanwhile (see the first test). */
const CONTAINERD_LOST_BLOB = /: preparing: .*content digest sha256:[0-9a-f]{64}: not found/;
const ENGINE_FAULTS: Record<string, RegExp> = {
  'docker26-containerd': CONTAINERD_LOST_BLOB,
  'docker-sid-containerd': CONTAINERD_LOST_BLOB,
  podman:
    /: preparing: .*(checking if image .* is dangling|retrieving parent of image .*): locating item named .*manifest.* file does not exist/,
};

/** Runs `cleanup` again and again until `until` settles; returns how many runs it made. */
async function repeatedly(cleanup: () => Promise<void>, until: Promise<unknown>): Promise<number> {
  let done = false;
  void until.finally(() => (done = true));
  let runs = 0;
  while (!done) {
    await cleanup();
    runs++;
    await sleep(300);
  }
  return runs;
}

describeDocker('jobs in flight on a shared daemon', () => {
  it(
    'the action prunes again and again beside jobs in flight: every job runs what it made, nothing in use or protected loses a tag',
    async () => {
      await clearDaemon(daemon.docker);
      // What there is to clean, and what must stay, arrived before the grace period.
      const old = await loadImages(daemon.docker, [
        { ...busyboxImage('old/app:1'), labels: { n: '1' } },
        { ...busyboxImage('old/app:2'), labels: { n: '2' } },
        { ...busyboxImage('keep/db:16'), labels: { n: '3' } },
        { ...busyboxImage('used/svc:1'), labels: { n: '4' } },
      ]);
      await daemon.docker.createContainer({
        name: 'svc',
        Image: 'used/svc:1',
        Cmd: ['/bin/busybox', 'true'],
      });
      await daemon.docker.getImage('used/svc:1').tag({ repo: 'used/svc', tag: 'also' });
      await sleep((GRACE_S + 1) * 1000);

      const inputs = {
        mode: 'prune',
        images: 'unused',
        'keep-recent': '0',
        protect: 'keep/db',
        'min-age': `${GRACE_S}s`,
        'runner-images-min-age': `${GRACE_S}s`,
        'state-dir': stateDir,
      };
      const jobs = runJobs(JOBS, 4);
      const codes: number[] = [];
      /** Images the action's runs removed or untagged, and anything a delete took beyond a plan. */
      const touched = new Set<string>();
      const unplanned: unknown[] = [];
      const runs = await repeatedly(async () => {
        const run = await runAction({ host: daemon.host, inputs });
        codes.push(run.code);
        for (const row of run.report.images as { id: string; state: string }[]) {
          if (row.state === 'removed' || row.state === 'untagged') touched.add(row.id);
        }
        unplanned.push(...(run.report.unplannedRemovals as unknown[]));
      }, jobs);
      const failures = await jobs;
      // Docker 26.1's containerd store: deleting any image while a load of one that shares its layer blobs is
      // in flight can collect a blob the load still needs ("content digest …: not found" as the load ends).
      // Docker's own prune fails every job here that way (the next test); nothing but removing nothing avoids
      // it, so there such a failed load is the engine's, logged, and only that kind is allowed. Docker 28.5's
      // containerd store does it too, more rarely (one load in one of three CI runs, at 5e6c218).
      // Podman 4.3's load checks every image in the store for being dangling after it loads, and fails the
      // load when another image's files go meanwhile ("checking if image … is dangling: locating item named
      // \"manifest\" for image with ID …: file does not exist"; or, from the same layer tree, "retrieving parent
      // of image …: locating item named …", seen once at 2830b38): one load in one of six runs here, and one
      // CI run at c269d39. Any image deleted while a load is in flight does it, so it is the engine's too.
      const engineFault = ENGINE_FAULTS[daemon.engine];
      const engineFaults = engineFault ? failures.filter((f) => engineFault.test(f)) : [];
      if (engineFaults.length > 0)
        console.log(
          `${daemon.engine} failed loads in flight (the engine fault above):\n${engineFaults.join('\n')}`,
        );
      expect(failures.filter((f) => !engineFaults.includes(f))).toEqual([]);
      expect(runs).toBeGreaterThan(2);
      expect(codes.every((code) => code === 0)).toBe(true);

      // One more run once the jobs are done and their images are past the grace period.
      const tags = await tagsById();
      expect(tags.get(old.get('keep/db:16')!)).toEqual(['keep/db:16']);
      expect(tags.get(old.get('used/svc:1')!)).toEqual(['used/svc:1', 'used/svc:also']);
      expect(tags.has(old.get('old/app:1')!)).toBe(false);
      expect(tags.has(old.get('old/app:2')!)).toBe(false);
      // No image a container uses was touched by a run, and no delete took more than its plan. (Docker 26's
      // containerd store itself drops an image record whose only tag a load moves to a new image, even
      // when a container uses it: such an image may be missing from the list, but not by the action.)
      const containers = await daemon.docker.listContainers({ all: true });
      expect(containers.filter((c) => touched.has(c.ImageID)).map((c) => c.Names)).toEqual([]);
      expect(unplanned).toEqual([]);
      if (daemon.engine !== 'docker26-containerd') {
        expect(containers.filter((c) => !tags.has(c.ImageID)).map((c) => c.Names)).toEqual([]);
      }
    },
    LONG,
  );

  it(
    "the engine's own image prune -a in the same harness breaks the jobs (what docs/policy.md reports)",
    async () => {
      await clearDaemon(daemon.docker);
      const prune = ['image', 'prune', '-a', '-f'];
      const jobs = runJobs(JOBS, 3);
      await repeatedly(async () => {
        await daemon.cli(prune);
      }, jobs);
      const failures = await jobs;
      console.log(`${daemon.engine}: image prune -a beside jobs in flight:\n${failures.join('\n')}`);
      // Each kind of job loses what it made before its later step.
      for (const job of JOBS) expect(failures.some((f) => f.startsWith(`${job.name} `))).toBe(true);
    },
    LONG,
  );
});

describeDocker('keep-recent on a real daemon ranks by what is newest, never by ID', () => {
  /** Loads specs untagged, then tags them in the order of their IDs: the largest ID gets the newest tag. */
  async function tagInIdOrder(specs: ImageSpec[], tags: string[]): Promise<string[]> {
    const loaded = await loadImages(daemon.docker, specs);
    const ids = specs.map((s) => loaded.get(s.name!)!).sort();
    for (const [i, id] of ids.entries()) {
      const [repo, tag] = tags[i].split(':');
      await daemon.docker.getImage(id).tag({ repo, tag });
      await sleep(50);
    }
    return ids;
  }

  it(
    'same-second builds and reproducible builds stamped 1980: the last one made or tagged stays',
    async () => {
      await clearDaemon(daemon.docker);
      const second = new Date(Date.now() - 86_400_000);
      second.setMilliseconds(0);
      const stamp = '1980-01-01T00:00:01Z';
      const spec = (name: string, created: Date | string): ImageSpec => ({
        ...jobImage([], name),
        created,
      });
      // Tagged in ID order, so an ID tie-break keeps the oldest: what the old ranking did.
      const worker = await tagInIdOrder(
        [spec('w1', second), spec('w2', second)],
        ['app/worker:1', 'app/worker:2'],
      );
      const pack = await tagInIdOrder(
        [spec('b1', stamp), spec('b2', stamp), spec('b3', stamp)],
        ['buildpack/app:v1', 'buildpack/app:v2', 'buildpack/app:v3'],
      );
      const run = await runAction({
        host: daemon.host,
        inputs: { mode: 'prune', images: 'unused', 'keep-recent': '1' },
      });
      expect(run.code).toBe(0);
      const tags = await tagsById();
      // The newest of each repository stays, with its tag.
      expect(tags.get(worker[1])).toEqual(['app/worker:2']);
      expect(tags.get(pack[2])).toEqual(['buildpack/app:v3']);
      if (daemon.imageStore !== 'podman') {
        // Docker records each tag's time: the older ones go.
        expect(tags.has(worker[0])).toBe(false);
        expect(tags.has(pack[0]) || tags.has(pack[1])).toBe(false);
      }
      const images = run.report.images as { tags: string[]; reason: string; detail: string }[];
      const kept = images.find((i) => i.tags.some((t) => t.endsWith('buildpack/app:v3')))!;
      expect(kept.reason).toBe('keep-recent');
      expect(kept.detail).toMatch(/by arrival on this host/);
      // The repositories as the daemon names them: Podman 4.3 tags short names as localhost/NAME.
      const listed = (await daemon.docker.listImages()).flatMap((i) => i.RepoTags ?? []);
      const local = listed.some((t) => t.startsWith('localhost/app/worker:')) ? 'localhost/' : '';
      expect(run.report.keepRecentClocks).toMatchObject({
        [`${local}app/worker`]: 'arrival',
        [`${local}buildpack/app`]: 'arrival',
      });
    },
    LONG,
  );
});

describeDocker(
  'swarm services on a real daemon',
  () => {
    itWith(
      ['docker'],
      "keeps the images of a service's spec and previous spec while it is scaled to zero; Docker's prune -a removes them",
      async () => {
        await clearDaemon(daemon.docker);
        // Docker 29.7's swarm init failed now and then on a loaded machine (exit 1): it is asked again, up to
        // three times, leaving any half-made swarm first; its message is kept for a last failure.
        let init = await daemon.cli(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
        for (let attempt = 1; attempt < 3 && init.code !== 0; attempt++) {
          console.log(`swarm init failed (${init.code}): ${init.stderr.trim()}; asking again`);
          await daemon.cli(['swarm', 'leave', '--force']);
          await sleep(2000);
          init = await daemon.cli(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
        }
        expect({ code: init.code, stderr: init.stderr.trim() }).toMatchObject({ code: 0 });
        try {
          await loadImages(daemon.docker, [
            { ...busyboxImage('svc/web:1'), labels: { n: '1' } },
            { ...busyboxImage('svc/web:2'), labels: { n: '2' } },
            { ...busyboxImage('svc/web:0'), labels: { n: '0' } },
          ]);
          const create = ['service', 'create', '--detach', '--name', 'web', '--replicas', '0'];
          expect((await daemon.cli([...create, '--no-resolve-image', 'svc/web:1'])).code).toBe(0);
          const update = [
            'service',
            'update',
            '--detach',
            '--no-resolve-image',
            '--image',
            'svc/web:2',
            'web',
          ];
          expect((await daemon.cli(update)).code).toBe(0);

          const run = await runAction({
            host: daemon.host,
            inputs: { mode: 'prune', images: 'unused', 'keep-recent': '0' },
          });
          expect(run.code).toBe(0);
          const images = run.report.images as { tags: string[]; reason: string; detail: string }[];
          const of = (tag: string) => images.find((i) => i.tags.includes(tag));
          expect(of('svc/web:2')).toMatchObject({ reason: 'service', detail: 'named by swarm service web' });
          expect(of('svc/web:1')).toMatchObject({
            reason: 'service',
            detail: "named by swarm service web's previous spec (its rollback)",
          });
          expect([...(await tagsById()).values()].flat().sort()).toEqual(['svc/web:1', 'svc/web:2']);

          // Docker's own prune removes both: nothing pins them but the service.
          await daemon.cli(['image', 'prune', '-a', '-f']);
          expect([...(await tagsById()).values()].flat()).toEqual([]);
        } finally {
          await daemon.cli(['swarm', 'leave', '--force']);
        }
      },
      LONG,
    );
  },
  [],
);
