// A plain-data inventory for tests and benches of the pure core: no daemon, every field as given.
import type { ContainerInfo, ImageInfo, Inventory } from '../../src/types';

/** An inventory of `images` and `containers` on a Docker 20.10 classic store; the daemon's usage is their sizes. */
export function inventoryOf(
  images: ImageInfo[],
  containers: ContainerInfo[] = [],
  extra: Partial<Inventory> = {},
): Inventory {
  const layers = images.reduce((n, i) => n + i.size, 0);
  return {
    images,
    containers,
    networks: [],
    volumes: [],
    buildCache: [],
    usage: { layers, containers: containers.reduce((n, c) => n + c.sizeRw, 0), volumes: 0, buildCache: 0 },
    rootDir: '/var/lib/docker',
    engine: { name: 'docker', version: '20.10.24', apiVersion: '1.41', imageStore: 'classic', id: 'test' },
    takenAt: 0,
    ...extra,
  };
}
