// keep-recent-by: used on a real daemon: the image a container used yesterday (recorded in the usage
// history by an earlier run, its container gone since) is the rollback target that stays, however many
// newer builds came after it; keep-recent-by: created keeps the newest build instead.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { runAction, type ActionRun } from './support/action';
import { describeDocker, startDaemon, type PrivateDaemon } from './support/daemon';
import { loadImages, type ImageSpec } from './support/fleet';

let daemon: PrivateDaemon;
let stateDir: string;

const build = (tag: string, created: string): ImageSpec => ({
  name: tag,
  tags: [`shop/web:${tag}`],
  created,
  layers: [{ key: `rollback-${tag}`, bytes: 1000 }],
});

function run(inputs: Record<string, string>): Promise<ActionRun> {
  return runAction({
    host: daemon.host,
    inputs: { images: 'unused', 'keep-recent': '1', 'state-dir': stateDir, ...inputs },
  });
}

/** Each image's state and reason in a run's report, by tag (Podman's `localhost/` prefix left out). */
const decisions = (r: ActionRun): Record<string, string> =>
  Object.fromEntries(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    r.report.images.map((i: any) => [i.tags[0].replace(/^localhost\//, ''), `${i.state}/${i.reason}`]),
  );

describeDocker('keep-recent-by: used on a private daemon', () => {
  beforeAll(async () => {
    daemon = (await startDaemon('rollback'))!;
    stateDir = mkdtempSync(join(tmpdir(), 'sdp-rollback-'));
  }, 60_000);
  afterAll(async () => {
    await daemon?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('keeps the image deployed yesterday, not the newest build, once a run has seen it used', async () => {
    const ids = await loadImages(daemon.docker, [
      build('v1', '2024-01-01T00:00:00Z'),
      build('v2', '2024-02-01T00:00:00Z'),
      build('v3', '2024-03-01T00:00:00Z'),
    ]);
    // v1 is deployed (a container of it exists) when a scheduled run looks; then it is replaced by hand.
    const deployed = await daemon.docker.createContainer({
      Image: ids.get('v1')!,
      name: 'web',
      Cmd: ['/none'],
    });
    const seen = await run({ mode: 'report' });
    expect(seen.code).toBe(0);
    expect(decisions(seen)['shop/web:v1']).toBe('kept/in-use');
    await deployed.remove();

    const byCreation = await run({ mode: 'report' });
    expect(decisions(byCreation)).toEqual({
      'shop/web:v1': 'would-remove/remove',
      'shop/web:v2': 'would-remove/remove',
      'shop/web:v3': 'kept/keep-recent',
    });

    const byUse = await run({ mode: 'prune', 'keep-recent-by': 'used' });
    expect(byUse.code).toBe(0);
    expect(decisions(byUse)).toEqual({
      'shop/web:v1': 'kept/keep-recent',
      'shop/web:v2': 'removed/remove',
      'shop/web:v3': 'removed/remove',
    });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const v1 = byUse.report.images.find((i: any) => i.id === ids.get('v1'));
    expect(v1.detail).toMatch(
      /^#1 most recently used of (localhost\/)?shop\/web \(keep-recent 1, by last use by a container, then creation\)$/,
    );
    const left = (await daemon.docker.listImages()).map((i) => i.Id);
    expect(left).toContain(ids.get('v1'));
    expect(left).not.toContain(ids.get('v2'));
    expect(left).not.toContain(ids.get('v3'));
  });
});
