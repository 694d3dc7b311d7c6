// Images pinned by digest on a real daemon: pushed to a private registry on loopback (Debian's
// docker-registry), removed, and pulled back as NAME@sha256:… only, so the image has no tag, only a
// RepoDigests entry, as `docker pull postgres@sha256:…` leaves it. `protect: NAME` and
// `protect: NAME@sha256:…` keep it, and keep-recent counts it in its repository.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { runAction } from './support/action';
import { describeDocker, startDaemon, type PrivateDaemon } from './support/daemon';
import { busyboxImage, clearDaemon, loadImages } from './support/fleet';
import { startRegistry, type Registry } from './support/registry';

const LONG = 180_000;
let daemon: PrivateDaemon;
let registry: Registry | undefined;
let host: string;

beforeAll(async () => {
  daemon = (await startDaemon('digests'))!;
  registry = daemon && (await startRegistry());
  host = registry?.host ?? '';
}, LONG);
afterAll(async () => {
  registry?.stop();
  await daemon?.stop();
});

describeDocker(
  'images pinned by digest on a real daemon',
  () => {
    it(
      'protect NAME and NAME@sha256, and keep-recent, keep an image pulled by digest only',
      async () => {
        if (!host) return; // no registry here, and SDP_REQUIRE_DOCKER is not set
        await clearDaemon(daemon.docker);
        const name = `${host}/pin/db`;
        const loaded = await loadImages(daemon.docker, [
          { ...busyboxImage(`${name}:16`), labels: { pin: '1' } },
        ]);
        expect((await daemon.cli(['push', `${name}:16`])).code).toBe(0);
        const pushed = await daemon.docker.getImage(`${name}:16`).inspect();
        const digest = pushed.RepoDigests.find((d) => d.startsWith(`${name}@`))!.split('@')[1];
        expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
        // Gone from the host, then pulled back by digest only: no tag, one RepoDigests entry.
        await daemon.docker.getImage(loaded.get(`${name}:16`)!).remove({ force: true });
        expect((await daemon.cli(['pull', `${name}@${digest}`])).code).toBe(0);
        const images = await daemon.docker.listImages();
        const pinned = images.find((i) => (i.RepoDigests ?? []).includes(`${name}@${digest}`))!;
        // No tag. (The containerd store lists the pulled name, NAME@DIGEST, among RepoTags.)
        expect((pinned.RepoTags ?? []).filter((t) => t !== '<none>:<none>' && !t.includes('@'))).toEqual([]);

        const decide = async (inputs: Record<string, string>) => {
          const run = await runAction({ host: daemon.host, inputs: { mode: 'report', ...inputs } });
          expect(run.code).toBe(0);
          const rows = run.report.images as { id: string; reason: string; detail: string }[];
          return rows.find((r) => r.id === pinned.Id)!;
        };
        // images: unused, as Docker's dangling prune keeps this image on the containerd store (it has a name).
        const unguarded = { images: 'unused', 'keep-recent': '0' };
        expect((await decide(unguarded)).reason).toBe('remove');
        expect(await decide({ ...unguarded, protect: name })).toMatchObject({
          reason: 'protected',
          detail: `matches protect entry "${name}"`,
        });
        expect((await decide({ ...unguarded, protect: `${name}@${digest}` })).reason).toBe('protected');
        expect((await decide({ ...unguarded, protect: `${name}@sha256:${'0'.repeat(64)}` })).reason).toBe(
          'remove',
        );
        expect((await decide({ images: 'unused', 'keep-recent': '1' })).reason).toBe('keep-recent');

        // And a prune leaves it where protect names it.
        const prune = await runAction({
          host: daemon.host,
          inputs: { mode: 'prune', images: 'unused', 'keep-recent': '0', protect: name },
        });
        expect(prune.code).toBe(0);
        expect((await daemon.docker.listImages()).map((i) => i.Id)).toContain(pinned.Id);
      },
      LONG,
    );
  },
  ['docker'],
);
