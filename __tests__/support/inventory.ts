// Plain inventories for unit tests of the planner: a Docker 20.10 daemon on the classic store.
import type { ContainerInfo, ImageInfo, Inventory } from '../../src/types';

export function inventoryOf(
  images: ImageInfo[],
  containers: ContainerInfo[] = [],
  extra: Partial<Inventory> = {},
): Inventory {
  return {
    images,
    containers,
    networks: [],
    volumes: [],
    buildCache: [],
    layersSize: 0,
    usage: { layers: 0, containers: 0, volumes: 0, buildCache: 0 },
    apiVersion: '1.41',
    rootDir: '/var/lib/docker',
    imageStore: 'classic',
    engine: { name: 'docker', version: '20.10.24', apiVersion: '1.41', imageStore: 'classic', id: 'test' },
    takenAt: Date.parse('2026-06-01T00:00:00Z'),
    ...extra,
  };
}
