// Removal races on a real daemon: the bundled action prunes through a proxy that, on seeing a chosen
// request, first does what another job on the host would (load a build over a tag, create a container
// from a planned image), then forwards it. What must hold: a new image that takes over a planned image's
// tag keeps it or is reported as an unplanned removal, and an image that gains a container keeps every tag.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { containerUsing } from '../src/engine/apply';
import { connectDocker } from '../src/engine/docker';
import { runAction, type ActionRun } from './support/action';
import { describeDocker, itWith, startDaemon, type PrivateDaemon } from './support/daemon';
import { clearDaemon, createContainers, imageState, loadImages, type ImageSpec } from './support/fleet';
import { deletedImage, startFaultProxy, type FaultProxy } from './support/proxy';

const DAY = 86_400_000;
const OLD = new Date(Date.now() - 30 * DAY);
const spec = (name: string, tags: string[], created = OLD): ImageSpec => ({
  name,
  tags,
  layers: [
    { key: 'races-base', bytes: 10_000 },
    { key: `races-${name}`, bytes: 2_000 },
  ],
  created,
});
/** Planned for removal: the app with an extra tag, the web image with three tags, and a bystander. */
const fleet = [
  spec('app', ['races/app:1', 'races/app:extra']),
  spec('web', ['races/web:1', 'races/web:2', 'races/web:3']),
  spec('other', ['races/other:1']),
];
/** Arrives during the run: a build that takes over a tag of the app. */
const build = spec('build', [], new Date());
// min-age 0: the grace period (issue 16, point 1) would keep a fleet loaded a moment ago.
const PRUNE = { mode: 'prune', images: 'unused', 'keep-recent': '0', 'min-age': '0' };

let daemon: PrivateDaemon;
let ids = new Map<string, string>();
const opened: FaultProxy[] = [];

async function proxy(): Promise<FaultProxy> {
  const p = await startFaultProxy(daemon.socket);
  opened.push(p);
  return p;
}
/** The real daemon's tags of an image, without Podman's `localhost/` prefix. */
async function tagsOf(id: string): Promise<string[] | undefined> {
  const image = (await imageState(daemon.docker)).find((i) => i.id === id);
  return image?.tags.map((t) => t.replace(/^localhost\//, ''));
}
const deletesTag = (req: { method: string; path: string }, prefix: string) =>
  (deletedImage(req) ?? '').replace(/^localhost\//, '').startsWith(prefix);
const warnings = (run: ActionRun) => run.stdout.split('\n').filter((l) => l.startsWith('::warning'));

describeDocker('races: removals on a host with jobs in flight', () => {
  beforeAll(async () => {
    daemon = (await startDaemon('races'))!;
  }, 60_000);
  afterAll(async () => {
    for (const p of opened) await p.close().catch(() => undefined);
    await daemon?.stop();
  }, 60_000);
  const reset = async () => {
    await clearDaemon(daemon.docker);
    ids = await loadImages(daemon.docker, fleet);
  };

  it('the container check before untagging finds a container of the image, and not of another, on this engine', async () => {
    await reset();
    await createContainers(daemon.docker, [{ name: 'races-probe', image: 'races/web:2', state: 'created' }]);
    // docker-modem takes the host and its TLS variables (a TLS engine's) from the environment.
    const saved = { ...process.env };
    Object.assign(process.env, daemon.env);
    const docker = connectDocker(daemon.host, { timeoutMs: 10_000 });
    try {
      expect(await containerUsing(docker, ids.get('web')!)).toBe('races-probe');
      expect(await containerUsing(docker, ids.get('app')!)).toBeUndefined();
    } finally {
      docker.close();
      for (const key of ['DOCKER_HOST', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH']) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  }, 120_000);

  itWith(
    ['unix-socket'],
    'a build that takes over a planned tag between the check and the delete: kept, or reported as an unplanned removal',
    async () => {
      await reset();
      let moved: string | undefined;
      let tag = '';
      const p = await proxy();
      // Whichever tag of the app goes by name (the daemon's first tag goes with the ID delete).
      p.rule = (req) => {
        if (moved !== undefined || !deletesTag(req, 'races/app:')) return undefined;
        tag = deletedImage(req)!.replace(/^localhost\//, '');
        moved = '';
        return {
          kind: 'before',
          run: async () => {
            moved = (await loadImages(daemon.docker, [{ ...build, tags: [tag] }])).get('build');
          },
        };
      };
      const run = await runAction({ host: p.host, inputs: PRUNE });
      await p.close();
      expect(run.code).toBe(0);
      expect(moved).toMatch(/^sha256:/);
      const kept = await tagsOf(moved!);
      if (!kept?.includes(tag)) {
        // No delete-if-still-this-image for a tag (see apply.ts): the new image went. Loudly.
        expect(run.report.unplannedRemovals).toEqual([{ id: moved, removedWith: ids.get('app') }]);
        expect(warnings(run).some((l) => l.includes(moved!.slice(7, 19)) && l.includes('plan'))).toBe(true);
      }
      // Nothing else is reported: the planned images' own deletes are not strangers.
      expect(run.report.unplannedRemovals.length).toBeLessThanOrEqual(1);
      // The planned images went; the bystander too.
      expect(await tagsOf(ids.get('app')!)).toBeUndefined();
      expect(await tagsOf(ids.get('other')!)).toBeUndefined();
    },
    180_000,
  );

  itWith(
    ['unix-socket'],
    'a container created from a planned image before its tags go: skipped, every tag kept',
    async () => {
      await reset();
      const web = ids.get('web')!;
      let created = false;
      const p = await proxy();
      // The first request about the web image after the inventory (the old code's tag check, the new
      // code's container check): a job runs `docker create races/web:2` just then.
      p.rule = (req) => {
        const about =
          req.path.includes('races%2Fweb') ||
          (req.path.includes('/containers/json') &&
            req.path.includes('ancestor') &&
            req.path.includes(web.slice(7)));
        if (created || !about) return undefined;
        created = true;
        return {
          kind: 'before',
          run: () =>
            createContainers(daemon.docker, [{ name: 'job', image: 'races/web:2', state: 'created' }]),
        };
      };
      const run = await runAction({ host: p.host, inputs: PRUNE });
      await p.close();
      expect(created).toBe(true);
      expect(run.code).toBe(0);
      expect(await tagsOf(web)).toEqual(['races/web:1', 'races/web:2', 'races/web:3']);
      const row = (run.report.images as { id: string; state: string; message?: string }[]).find(
        (i) => i.id === web,
      );
      expect(row?.state).toBe('kept');
      expect(row?.message).toMatch(/gained a container since the inventory/);
      expect(p.log.filter((e) => deletesTag(e, 'races/web'))).toEqual([]);
    },
    180_000,
  );

  itWith(
    ['unix-socket'],
    'a container created while a planned image’s tags go: the daemon refuses the last delete, the tags come back',
    async () => {
      await reset();
      const web = ids.get('web')!;
      let tagDeletes = 0;
      const p = await proxy();
      // At the second (last) extra tag's delete, a job creates a container from the image by ID.
      p.rule = (req) =>
        deletesTag(req, 'races/web') && ++tagDeletes === 2
          ? {
              kind: 'before',
              run: () => createContainers(daemon.docker, [{ name: 'job', image: web, state: 'created' }]),
            }
          : undefined;
      const run = await runAction({ host: p.host, inputs: PRUNE });
      await p.close();
      expect(tagDeletes).toBe(2);
      expect(run.code).toBe(0);
      expect(await tagsOf(web)).toEqual(['races/web:1', 'races/web:2', 'races/web:3']);
      const restored = run.report.restoredTags as { id: string; tags: string[] }[];
      expect(restored.map((r) => r.id)).toEqual([web]);
      expect(restored[0].tags.length).toBe(2);
      expect(warnings(run).some((l) => l.includes('put back tag(s)'))).toBe(true);
    },
    180_000,
  );
});
