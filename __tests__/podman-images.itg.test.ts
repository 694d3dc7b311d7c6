// Podman's image list read from its store's files (src/engine/podman-images.ts) against the list its
// Docker-compatible API gives, field by field, on a store holding what the reader must derive as Podman
// does: parents (on the parent layer, and on the same layer by one metadata step), images without layers,
// a manifest list (left out of the list), several names, a name of another registry, labels, a dangling
// image, and an image pulled by digest from a registry of the test's own.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { runAction } from './support/action';
import { describeDocker, startDaemon, type PrivateDaemon } from './support/daemon';
import { busyboxImage, clearDaemon, listAllImages, loadImages, type ImageSpec } from './support/fleet';
import { startFaultProxy } from './support/proxy';
import { startRegistry, type Registry } from './support/registry';
import { readPodmanImages, type PodmanSummary } from '../src/engine/podman-images';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const LONG = 180_000;
const T = '2025-03-01T10:00:00.000Z';
let daemon: PrivateDaemon;
let registry: Registry | undefined;

beforeAll(async () => {
  daemon = (await startDaemon('podman-images'))!;
  registry = daemon && (await startRegistry());
}, LONG);
afterAll(async () => {
  registry?.stop();
  await daemon?.stop();
});

function fleet(): ImageSpec[] {
  const layer = (key: string) => ({ key: `pi-${key}`, bytes: 4096 });
  return [
    // A parent and its child on the next layer, and a grandchild.
    { tags: ['pi/base:1'], layers: [layer('a')], created: T },
    { tags: ['pi/app:1', 'registry.example.com/pi/app:1'], layers: [layer('a'), layer('b')], created: T },
    { tags: [], name: 'grandchild', layers: [layer('a'), layer('b'), layer('c')], created: T },
    // A child on the same layer: one metadata step more.
    { tags: ['pi/cfg:1'], layers: [layer('x')], created: T },
    { tags: ['pi/cfg:2'], layers: [layer('x')], created: T, emptyHistorySteps: 1, labels: { tier: 'web' } },
    // Same layers, another history: no parent.
    { tags: ['pi/other:1'], layers: [layer('a'), layer('b')], created: '2025-03-02T00:00:00Z' },
    // Images without layers, one extending the other.
    { tags: ['pi/empty:1'], layers: [], created: T, emptyHistorySteps: 1 },
    { tags: ['pi/empty:2'], layers: [], created: T, emptyHistorySteps: 2, labels: { a: '1', b: '' } },
    { tags: [], name: 'dangling', layers: [layer('d')], created: '2020-01-01T00:00:00Z' },
  ];
}

/** An entry of either list: the API may leave out a field, or send null. */
type Listed = Pick<PodmanSummary, 'Id' | 'Created' | 'Size'> & {
  [K in keyof PodmanSummary]?: PodmanSummary[K] | null;
};

/** What the reader and the API are compared on, in one form (null lists and labels as empty). */
function comparable(i: Listed) {
  return {
    Id: i.Id,
    ParentId: i.ParentId ?? '',
    RepoTags: [...(i.RepoTags ?? [])].filter((t) => t !== '<none>:<none>').sort(),
    RepoDigests: [...(i.RepoDigests ?? [])].sort(),
    Created: i.Created,
    Size: i.Size,
    Labels: i.Labels ?? {},
  };
}

describeDocker(
  "Podman's image list from its store's files",
  () => {
    it(
      'equals the API list, entry by entry, and a report reads it from the files',
      async () => {
        await clearDaemon(daemon.docker);
        const ids = await loadImages(daemon.docker, fleet());
        if (registry) {
          // Pushed, removed, and pulled back by digest only.
          const name = `${registry.host}/pi/pinned`;
          await loadImages(daemon.docker, [busyboxImage(`${name}:1`)]);
          const digestFile = join(daemon.dir, 'pushed.digest');
          const push = await daemon.cli([
            'push',
            '--tls-verify=false',
            '--digestfile',
            digestFile,
            `${name}:1`,
          ]);
          expect({ code: push.code, stderr: push.code ? push.stderr : '' }).toEqual({ code: 0, stderr: '' });
          const digest = readFileSync(digestFile, 'utf8').trim();
          expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
          expect((await daemon.cli(['rmi', '-f', `${name}:1`])).code).toBe(0);
          const pull = await daemon.cli(['pull', '--tls-verify=false', `${name}@${digest}`]);
          expect({ code: pull.code, stderr: pull.code ? pull.stderr : '' }).toEqual({ code: 0, stderr: '' });
        }

        const info = (await daemon.docker.info()) as { DockerRootDir: string; Driver: string };
        const compare = async () => {
          const files = await readPodmanImages(info.DockerRootDir, info.Driver);
          expect(files).toBeDefined();
          const api = await listAllImages(daemon.docker);
          const byId = <T extends { Id: string }>(list: T[]) =>
            [...list].sort((a, b) => a.Id.localeCompare(b.Id));
          expect(byId(files!.summaries).map(comparable)).toEqual(byId(api).map(comparable));
          return { files: files!, api };
        };
        const { files, api } = await compare();

        // The store holds what the test meant it to: parents of both kinds.
        const parentOf = (key: string) => {
          const parent = files.summaries.find((s) => s.Id === ids.get(key))!.ParentId;
          return parent && `sha256:${parent}`;
        };
        expect(parentOf('pi/app:1')).toBe(ids.get('pi/base:1'));
        expect(parentOf('grandchild')).toBe(ids.get('pi/app:1'));
        expect(parentOf('pi/cfg:2')).toBe(ids.get('pi/cfg:1'));
        expect(parentOf('pi/empty:2')).toBe(ids.get('pi/empty:1'));
        expect(parentOf('pi/other:1')).toBe('');
        if (registry) expect(files.summaries.some((s) => s.RepoDigests.length > 0)).toBe(true);
        // Each image's layers as its inspect gives them.
        for (const summary of files.summaries) {
          const inspect = await daemon.docker.getImage(summary.Id).inspect();
          expect(files.stored.get(summary.Id)!.layers).toEqual(inspect.RootFS.Layers ?? []);
        }

        // The action as root asks neither the list nor /system/df (there is no volume).
        const proxy = await startFaultProxy(daemon.socket);
        const run = await runAction({ host: proxy.host, inputs: { mode: 'report', images: 'unused' } });
        await proxy.close();
        expect(run.code).toBe(0);
        expect(run.report.daemon.layersReadFrom).toBe('store');
        expect((run.report.images as unknown[]).length).toBe(api.length);
        const asked = proxy.log.map((e) => `${e.method} ${e.path.replace(/^\/v[\d.]+/, '').split('?')[0]}`);
        expect(asked).toContain('GET /containers/json');
        expect(asked.filter((r) => /\/images\/json|\/system\/df/.test(r))).toEqual([]);

        // A manifest list is left out of the list. (Podman 4.3's own list fails while one is there beside
        // images without layers, "retrieving parent of image …: choosing image instance": those go first.)
        await daemon.docker.getImage('pi/empty:2').remove();
        await daemon.docker.getImage('pi/empty:1').remove();
        expect((await daemon.cli(['manifest', 'create', 'localhost/pi/list:1'])).code).toBe(0);
        const withList = await compare();
        expect(withList.files.summaries.length).toBe(api.length - 2);

        // With a volume, /system/df is asked for its size, and the list is still read from the files.
        await daemon.docker.createVolume({ Name: 'pi-volume' });
        const again = await startFaultProxy(daemon.socket);
        const withVolume = await runAction({
          host: again.host,
          inputs: { mode: 'report', volumes: 'anonymous' },
        });
        await again.close();
        expect(withVolume.code).toBe(0);
        const paths = again.log.map((e) => e.path.replace(/^\/v[\d.]+/, '').split('?')[0]);
        expect(paths).toContain('/system/df');
        expect(paths).not.toContain('/images/json');
        const objects = withVolume.report.objects as { kind: string; name: string; reason: string }[];
        expect(objects.find((o) => o.kind === 'volume' && o.name === 'pi-volume')?.reason).toBe('named');
      },
      LONG,
    );

    it(
      'a protected untagged parent stays when its child goes: Podman deletes an untagged parent with its last child',
      async () => {
        await clearDaemon(daemon.docker);
        const layer = (key: string) => ({ key: `pc-${key}`, bytes: 4096 });
        const ids = await loadImages(daemon.docker, [
          { tags: [], name: 'base', layers: [layer('a')], created: T, labels: { keep: '1' } },
          { tags: ['pc/app:1'], layers: [layer('a'), layer('b')], created: T },
          { tags: [], name: 'plain-base', layers: [layer('x')], created: T },
          { tags: ['pc/other:1'], layers: [layer('x'), layer('y')], created: T },
        ]);
        const run = await runAction({
          host: daemon.host,
          inputs: {
            mode: 'prune',
            images: 'unused',
            'keep-recent': '0',
            'min-age': '0',
            protect: 'label=keep',
          },
        });
        expect(run.code).toBe(0);
        const left = new Set((await listAllImages(daemon.docker)).map((i) => i.Id));
        // The protected parent and the child it needs stay; the unprotected pair goes, parent with child.
        expect([ids.get('base'), ids.get('pc/app:1')].map((id) => left.has(id!))).toEqual([true, true]);
        expect([ids.get('plain-base'), ids.get('pc/other:1')].map((id) => left.has(id!))).toEqual([
          false,
          false,
        ]);
        const rows = run.report.images as { id: string; state: string; reason: string; detail: string }[];
        expect(rows.find((r) => r.id === ids.get('pc/app:1'))).toMatchObject({
          state: 'kept',
          reason: 'protected',
        });
      },
      LONG,
    );
  },
  ['podman'],
);
