// The young generation (src/heap.ts): both bundles keep V8's new space at the size it has once their
// first tick is done, unless the user chose its size; at 5,000 images that is about 30 MB of a run's peak
// memory (docs/speed.md, Memory). The bundles run in a node of their own (SDP_NODE: the Node 24 GitHub
// runs the action with) under a probe that records the flags they set and, as the process exits, makes
// garbage and prints the largest capacity the new space reached.
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { youngGenerationIsUsers } from '../src/heap';

const root = path.resolve(__dirname, '..');
const probe = path.join(__dirname, 'support/young-generation-probe.cjs');
const node = process.env.SDP_NODE ?? process.execPath;
const MB = 1024 * 1024;
// The action writes its report under HOME: a folder of the test's own, not the user's.
const home = mkdtempSync(path.join(tmpdir(), 'sdp-heap-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

interface Probed {
  /** The flags the bundle set, each with the connections started before it. */
  flags: string[];
  newSpaceMax: number;
}

function probed(argv: string[], env: Record<string, string> = {}, nodeArgs: string[] = []): Probed {
  const run = spawnSync(node, [...nodeArgs, '--require', probe, ...argv], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
    env: { PATH: process.env.PATH ?? '', HOME: home, ...env },
  });
  const found = /new-space-max=(\d+)/.exec(run.stderr);
  if (!found) throw new Error(`no probe line (exit ${run.status}): ${run.stderr}`);
  return {
    flags: [...run.stderr.matchAll(/^set-flags=(.*)$/gm)].map((m) => m[1]),
    newSpaceMax: Number(found[1]),
  };
}

// The action's run needs a daemon: a socket that does not exist ends it at its first connection.
const action = ['dist/index.js'];
const actionEnv = { INPUT_MODE: 'report', 'INPUT_DOCKER-HOST': 'unix:///nonexistent/sdp-heap-test.sock' };
const command = ['dist/cli.js', '--version'];
const SET = '--semi-space-growth-factor=1';

describe('the young generation', () => {
  it('the action stops its growth once its first request to the daemon is on its way', () => {
    expect(probed(action, actionEnv).flags).toEqual([`${SET} after 1 connection(s)`]);
  });

  it('the command stops its growth, and V8 then keeps the new space at the size it had', () => {
    const own = probed(command);
    expect(own.flags).toEqual([`${SET} after 0 connection(s)`]);
    const v8s = probed(command, { SDP_YOUNG_GENERATION: 'default' });
    expect(v8s.flags).toEqual([]);
    // The probe's garbage grows V8's default new space to 16 MB (Node 20 and 24); the command's stays.
    expect(v8s.newSpaceMax).toBeGreaterThanOrEqual(12 * MB);
    expect(own.newSpaceMax).toBeLessThanOrEqual(v8s.newSpaceMax / 3);
  });

  it("leaves a size the user gave node alone, in NODE_OPTIONS or on node's command line", () => {
    expect(probed(action, { ...actionEnv, NODE_OPTIONS: '--max-semi-space-size=8' }).flags).toEqual([]);
    expect(probed(command, {}, ['--max-semi-space-size=8']).flags).toEqual([]);
    expect(probed(action, { ...actionEnv, SDP_YOUNG_GENERATION: 'default' }).flags).toEqual([]);
  });
});

describe('youngGenerationIsUsers', () => {
  it.each([
    [{}, [], false],
    [{ NODE_OPTIONS: '--require /x/measure.cjs' }, [], false],
    [{ SDP_YOUNG_GENERATION: 'default' }, [], true],
    [{ SDP_YOUNG_GENERATION: 'small' }, [], false],
    [{ NODE_OPTIONS: '--max-semi-space-size=1' }, [], true],
    [{ NODE_OPTIONS: '--enable-source-maps --min-semi-space-size=2' }, [], true],
    [{}, ['--semi-space-growth-factor=3'], true],
    [{}, ['--max-old-space-size=512'], false],
  ])('%j %j: %s', (env, execArgv, expected) => {
    expect(youngGenerationIsUsers(env, execArgv)).toBe(expected);
  });
});
