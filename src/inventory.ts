// One inventory of the daemon: images with their layers, containers, and Docker's own layer total.
// Per image it costs two calls (inspect for the diff IDs, history for the layer sizes), run concurrently.

import type { DockerApi } from './docker';
import { layerSizesFromHistory } from './estimate';
import { mapPool } from './pool';
import type { ContainerInfo, ImageInfo, Inventory } from './types';

interface ApiImageSummary {
  Id: string;
  ParentId?: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Created: number;
  Size: number;
  Labels?: Record<string, string> | null;
}

interface ApiContainerSummary {
  Id: string;
  Names?: string[] | null;
  Image: string;
  ImageID: string;
  State: string;
  Created: number;
  Labels?: Record<string, string> | null;
}

/** Dangling images show `<none>:<none>` (API < 1.45), `null` or `[]` depending on the daemon. */
export function realTags(tags: string[] | null | undefined): string[] {
  return (tags ?? []).filter((t) => t !== '<none>:<none>');
}

export async function takeInventory(docker: DockerApi, concurrency: number): Promise<Inventory> {
  const takenAt = Date.now();
  const [version, summaries, containers, df] = await Promise.all([
    docker.request<{ ApiVersion: string }>('GET', '/version'),
    docker.request<ApiImageSummary[]>('GET', '/images/json', { all: true }),
    docker.request<ApiContainerSummary[]>('GET', '/containers/json', { all: true }),
    docker.request<{ LayersSize: number }>('GET', '/system/df'),
  ]);

  const images = await mapPool(summaries, concurrency, async (summary): Promise<ImageInfo | undefined> => {
    try {
      const [inspect, history] = await Promise.all([
        docker.request<{ RootFS?: { Layers?: string[] } }>('GET', `/images/${summary.Id}/json`),
        docker.request<{ Size: number }[]>('GET', `/images/${summary.Id}/history`),
      ]);
      const layers = inspect.RootFS?.Layers ?? [];
      const { sizes, exact } = layerSizesFromHistory(
        layers,
        history.map((step) => step.Size),
      );
      return {
        id: summary.Id,
        repoTags: realTags(summary.RepoTags),
        repoDigests: (summary.RepoDigests ?? []).filter((d) => d !== '<none>@<none>'),
        created: summary.Created,
        size: summary.Size,
        labels: summary.Labels ?? {},
        parentId: summary.ParentId ?? '',
        layers,
        layerSizes: sizes,
        layerSizesExact: exact,
      };
    } catch (error) {
      // Deleted between the listing and the inspect (another run, a user): it is no longer there to plan.
      if ((error as { statusCode?: number }).statusCode === 404) return undefined;
      throw error;
    }
  });

  return {
    images: images.filter((image): image is ImageInfo => image !== undefined),
    containers: containers.map((c): ContainerInfo => ({
      id: c.Id,
      names: (c.Names ?? []).map((n) => n.replace(/^\//, '')),
      imageId: c.ImageID,
      image: c.Image,
      state: c.State,
      created: c.Created,
      labels: c.Labels ?? {},
    })),
    layersSize: df.LayersSize,
    apiVersion: version.ApiVersion,
    takenAt,
  };
}

/** Docker's exact bytes of all image layers, for measuring what a prune freed. */
export async function layersSize(docker: DockerApi): Promise<number> {
  return (await docker.request<{ LayersSize: number }>('GET', '/system/df')).LayersSize;
}
