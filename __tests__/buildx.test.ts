// Stale buildx builders: finding builder containers, reading `docker buildx ls`, and the plan's rules.
import { describe, expect, it } from '@jest/globals';
import { builderOf, parseBuildxLs } from '../src/engine/buildx';
import { parseProtectEntry } from '../src/policy/protect';
import { planRemovals, type Policy } from '../src/policy/plan';
import type { BuilderInfo, ContainerInfo, VolumeInfo } from '../src/types';
import { inventoryOf } from './support/inventory';
import { containerInfo } from './support/objects';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const H = 3600;

describe('builderOf', () => {
  it.each([
    ['buildx_buildkit_builder-1a2b0', 'builder-1a2b'],
    ['buildx_buildkit_ci0', 'ci'],
    ['buildx_buildkit_x00', 'x0'],
    ['buildx_buildkit_ci1', undefined],
    ['buildx_buildkit_0', undefined],
    ['my_buildx_buildkit_ci0', undefined],
    ['buildkitd', undefined],
  ])('%s -> %s', (name, builder) => expect(builderOf(name)).toBe(builder));
});

describe('parseBuildxLs', () => {
  it('reads JSON lines (buildx 0.13+), with the last activity', () => {
    const out = [
      '{"Current":false,"Driver":"docker-container","LastActivity":"2026-05-30T08:39:41Z","Name":"ci-killed","Nodes":[]}',
      '{"Current":true,"Driver":"docker","LastActivity":"0001-01-01T00:00:00Z","Name":"default","Nodes":[]}',
    ].join('\n');
    expect(parseBuildxLs(out)).toEqual([
      {
        name: 'ci-killed',
        current: false,
        driver: 'docker-container',
        lastActivityMs: Date.parse('2026-05-30T08:39:41Z'),
      },
      { name: 'default', current: true, driver: 'docker' },
    ]);
  });

  it('reads the table of older versions', () => {
    const out = [
      'NAME/NODE    DRIVER/ENDPOINT             STATUS  BUILDKIT PLATFORMS',
      'mybuilder *  docker-container',
      '  mybuilder0 unix:///var/run/docker.sock running v0.10.3  linux/amd64',
      'other        docker-container',
      '  other0     unix:///var/run/docker.sock inactive',
      'default      docker',
      '  default    default                     running 20.10.24 linux/amd64',
    ].join('\n');
    expect(parseBuildxLs(out)).toEqual([
      { name: 'mybuilder', current: true, driver: 'docker-container' },
      { name: 'other', current: false, driver: 'docker-container' },
      { name: 'default', current: false, driver: 'docker' },
    ]);
  });
});

function container(name: string, state: string, ageHours: number, volumes: string[] = []): ContainerInfo {
  return containerInfo({
    id: `id-${name}`,
    names: [name],
    imageId: 'sha256:buildkit',
    image: 'moby/buildkit:buildx-stable-1',
    state,
    createdMs: NOW - ageHours * H * 1000,
    sizeRw: 100,
    volumes,
  });
}
const volume = (name: string): VolumeInfo => ({
  name,
  driver: 'local',
  labels: {},
  size: 5000,
  refCount: 1,
  createdMs: NOW - 100 * H * 1000,
});

describe('planRemovals: buildx-builders', () => {
  const B = (builder: string) => `buildx_buildkit_${builder}0`;
  const specs: [string, string, number, Partial<BuilderInfo>][] = [
    ['killed', 'running', 48, { processes: 1, known: true }],
    ['stopped', 'exited', 48, { processes: 0, known: false }],
    ['busy', 'running', 48, { processes: 3, known: true }],
    ['unknown-top', 'running', 48, { processes: undefined }],
    ['current', 'running', 48, { processes: 1, current: true }],
    ['fresh', 'running', 2, { processes: 1 }],
    ['used-lately', 'running', 48, { processes: 1, lastActivityMs: NOW - H * 1000 }],
    ['kept', 'running', 48, { processes: 1 }],
  ];
  const containers = specs.map(([b, state, age]) => container(B(b), state, age, [`${B(b)}_state`]));
  const builders: BuilderInfo[] = specs.map(([b, , , extra]) => ({
    containerId: `id-${B(b)}`,
    name: B(b),
    builder: b,
    current: false,
    ...extra,
  }));
  const inv = inventoryOf([], [...containers, container('ordinary', 'exited', 48)], {
    volumes: [...specs.map(([b]) => volume(`${B(b)}_state`)), volume('named-data')],
    builders,
  });
  const policy = (p: Partial<Policy> = {}): Policy => ({
    mode: 'prune',
    images: 'none',
    protect: [parseProtectEntry(B('kept'))],
    keepRecent: 0,
    buildxBuilders: 'stale',
    ...p,
  });
  const decisions = (p: Partial<Policy> = {}) =>
    Object.fromEntries(
      planRemovals(inv, policy(p), NOW).objects.map((o) => [
        o.name,
        `${o.action}:${o.reason}${o.force ? ':force' : ''}`,
      ]),
    );

  it('removes idle, old, unprotected builders that are not the current one, and their state volumes', () => {
    expect(decisions()).toEqual({
      [B('killed')]: 'remove:remove:force',
      [B('stopped')]: 'remove:remove',
      [B('busy')]: 'keep:running',
      [B('unknown-top')]: 'keep:running',
      [B('current')]: 'keep:in-use',
      [B('fresh')]: 'keep:too-recent',
      [B('used-lately')]: 'keep:too-recent',
      [B('kept')]: 'keep:protected',
      ordinary: 'keep:not-selected',
      [`${B('killed')}_state`]: 'remove:remove',
      [`${B('stopped')}_state`]: 'remove:remove',
      ...Object.fromEntries(
        ['busy', 'unknown-top', 'current', 'fresh', 'used-lately', 'kept'].map((b) => [
          `${B(b)}_state`,
          'keep:not-selected',
        ]),
      ),
      'named-data': 'keep:not-selected',
    });
  });

  it('older-than replaces the 24h default', () => {
    expect(decisions({ olderThan: { text: '1h', durationMs: 3_600_000 } })[B('fresh')]).toBe(
      'remove:remove:force',
    );
    expect(decisions({ olderThan: { text: '3d', durationMs: 3 * 86_400_000 } })[B('killed')]).toBe(
      'keep:too-recent',
    );
  });

  it('buildx-builders: none leaves them to the containers input (never a running one)', () => {
    const d = decisions({ buildxBuilders: 'none', containers: 'stopped' });
    expect(d[B('killed')]).toBe('keep:running');
    expect(d[B('stopped')]).toBe('remove:remove');
    expect(d[`${B('stopped')}_state`]).toBe('keep:not-selected');
  });

  it('the details say what is known of each builder', () => {
    const plan = planRemovals(inv, policy(), NOW);
    const detail = (name: string) => plan.objects.find((o) => o.name === name)?.detail;
    expect(detail(B('killed'))).toBe('stale buildx builder killed (idle, known to buildx)');
    expect(detail(B('stopped'))).toBe('stale buildx builder stopped (exited, unknown to buildx)');
    expect(detail(B('busy'))).toBe('buildx builder busy: a build is running (3 processes)');
    expect(detail(B('current'))).toBe("the current job's buildx builder current");
  });
});
