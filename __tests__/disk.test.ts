import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { diskFree, parseToml, snapshotPlaces } from '../src/engine/disk';
import { isContainerdStore } from '../src/engine/inventory';

describe('diskFree: a number only when the daemon’s disk is this machine’s', () => {
  const root = mkdtempSync(join(tmpdir(), 'sdp-root-'));
  mkdirSync(join(root, 'image'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('measures the data root of a local daemon', async () => {
    expect(await diskFree('unix:///var/run/docker.sock', root)).toBeGreaterThan(0);
  });

  it('knows the containerd image store’s data root too', async () => {
    const c8d = mkdtempSync(join(tmpdir(), 'sdp-c8d-'));
    mkdirSync(join(c8d, 'containerd'));
    try {
      expect(await diskFree('unix:///var/run/docker.sock', c8d)).toBeGreaterThan(0);
    } finally {
      rmSync(c8d, { recursive: true, force: true });
    }
  });

  it.each([
    ['a remote daemon', 'tcp://10.0.0.5:2376', root],
    ['an ssh daemon', 'ssh://ci@build-host', root],
    ['a data root this machine cannot see', 'unix:///var/run/docker.sock', join(root, 'missing')],
    ['a directory that is not a Docker data root', 'unix:///var/run/docker.sock', tmpdir()],
  ])('is unknown for %s', async (_name, host, dir) => {
    expect(await diskFree(host, dir)).toBeUndefined();
  });
});

describe('isContainerdStore', () => {
  it.each([
    [[['driver-type', 'io.containerd.snapshotter.v1']], true],
    [
      [
        ['Backing Filesystem', 'extfs'],
        ['Supports d_type', 'true'],
      ],
      false,
    ],
    [null, false],
  ] as [[string, string][] | null, boolean][])('%j → %s', (status, expected) => {
    expect(isContainerdStore(status)).toBe(expected);
  });
});

describe('snapshotPlaces: where the containerd store keeps its snapshots', () => {
  const daemon = {
    rootDir: '/var/lib/docker',
    engine: { imageStore: 'containerd' as const },
    driver: 'overlayfs',
    containerdAddress: '/run/containerd/containerd.sock',
  };
  const managedConfig = [
    'version = 0',
    'root = "/var/lib/docker/containerd/daemon"',
    '[grpc]',
    '  address = "/var/run/docker/containerd/containerd.sock"',
  ].join('\n');
  const managed = {
    argv: ['containerd', '--config', '/var/run/docker/containerd/containerd.toml'],
    configFile: '/var/run/docker/containerd/containerd.toml',
    config: managedConfig,
  };
  const paths = (places: { path: string }[]) => places.map((p) => p.path);

  it('takes the root and snapshotter root_path of the containerd serving the daemon’s socket', () => {
    const system = {
      argv: ['/usr/bin/containerd'],
      configFile: '/etc/containerd/config.toml',
      config: [
        "root = '/srv/containerd'",
        '[plugins."io.containerd.snapshotter.v1.overlayfs"]',
        '  root_path = "/fast/snapshots" # its own disk',
      ].join('\n'),
    };
    const places = snapshotPlaces(daemon, [managed, system]);
    expect(paths(places)).toEqual(['/fast/snapshots', '/srv/containerd']);
    expect(places[0].why).toContain('/run/containerd/containerd.sock');
  });

  it('finds dockerd’s own containerd by its address, and by its root before API 1.46', () => {
    const own = { ...daemon, containerdAddress: '/var/run/docker/containerd/containerd.sock' };
    const expected = [
      '/var/lib/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs',
      '/var/lib/docker/containerd/daemon',
    ];
    expect(paths(snapshotPlaces(own, [managed]))).toEqual(expected);
    expect(paths(snapshotPlaces({ ...daemon, containerdAddress: undefined }, [managed]))).toEqual(expected);
  });

  it('uses containerd’s defaults where the system configuration is absent, flags over the file', () => {
    const bare = { argv: ['containerd'], configFile: '/etc/containerd/config.toml', config: '' };
    expect(paths(snapshotPlaces(daemon, [bare]))).toEqual([
      '/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs',
      '/var/lib/containerd',
    ]);
    const flagged = { ...bare, argv: ['containerd', '--root=/data/c8d', '-a', '/run/c.sock'] };
    expect(paths(snapshotPlaces({ ...daemon, containerdAddress: '/run/c.sock' }, [flagged]))[1]).toBe(
      '/data/c8d',
    );
  });

  it('falls back to moby’s layout, then the system configuration, when no process is seen', () => {
    const notSeen = { argv: [], configFile: '/etc/containerd/config.toml', config: 'root = "/srv/c"' };
    // At the default socket the system configuration describes the daemon's containerd.
    expect(paths(snapshotPlaces(daemon, [notSeen]))).toEqual([
      '/srv/c/io.containerd.snapshotter.v1.overlayfs',
      '/srv/c',
    ]);
    expect(paths(snapshotPlaces({ ...daemon, containerdAddress: undefined }, [notSeen]))).toEqual([
      '/var/lib/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs',
      '/var/lib/docker/containerd/daemon',
      '/srv/c/io.containerd.snapshotter.v1.overlayfs',
      '/srv/c',
    ]);
    // A containerd at another socket: the system configuration does not describe it.
    const other = { ...daemon, containerdAddress: '/tmp/x/containerd.sock' };
    expect(paths(snapshotPlaces(other, [notSeen]))).toHaveLength(2);
  });

  it('reads no root from a configuration it cannot read (a docker-group user): moby’s layout only', () => {
    const own = { ...daemon, containerdAddress: '/var/run/docker/containerd/containerd.sock' };
    expect(paths(snapshotPlaces(own, [{ ...managed, config: undefined }]))).toEqual([
      '/var/lib/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs',
      '/var/lib/docker/containerd/daemon',
    ]);
  });
});

describe('parseToml: the parts of containerd’s configuration read here', () => {
  it('reads top-level keys, tables with quoted names, both string kinds, and skips arrays of tables', () => {
    const toml = parseToml(
      [
        'version = 2',
        'root = "/a\\\\b" # comment',
        "state = '/run/x'",
        '[grpc]',
        '  address = "/s.sock"',
        '[[proxy_plugins]]',
        '  address = "/other.sock"',
        "[plugins.'io.containerd.snapshotter.v1.overlayfs']",
        '  root_path = "/p"',
      ].join('\n'),
    );
    expect(toml.get('.root')).toBe('/a\\b');
    expect(toml.get('.state')).toBe('/run/x');
    expect(toml.get('.version')).toBeUndefined();
    expect(toml.get('grpc.address')).toBe('/s.sock');
    expect(toml.get('plugins.io.containerd.snapshotter.v1.overlayfs.root_path')).toBe('/p');
  });
});
