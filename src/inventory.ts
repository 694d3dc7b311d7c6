// One inventory of the daemon: images with their layers, containers, networks, volumes, build cache, and
// Docker's own byte totals. Per image: one inspect (the diff IDs); a history (layer sizes) only where
// `/system/df` cannot size the image's layers already (see planLayerSizing).

import { messageOf, type DockerApi } from './docker';
import { planLayerSizing, type DfImage } from './estimate';
import { mapPool } from './pool';
import type { ContainerInfo, ImageInfo, Inventory, Usage } from './types';

interface ApiImageSummary {
  Id: string;
  ParentId?: string;
  RepoTags?: string[] | null;
  RepoDigests?: string[] | null;
  Created: number;
  Size: number;
  SharedSize?: number;
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
  SizeRw?: number;
  HostConfig?: { NetworkMode?: string };
  NetworkSettings?: { Networks?: Record<string, { NetworkID?: string }> | null };
  Mounts?: { Type?: string; Name?: string }[] | null;
}

interface ApiNetwork {
  Id: string;
  Name: string;
  Driver: string;
  Scope: string;
  Labels?: Record<string, string> | null;
  Created: string;
}

interface ApiVolume {
  Name: string;
  Driver: string;
  Labels?: Record<string, string> | null;
  CreatedAt?: string;
  UsageData?: { Size: number; RefCount: number } | null;
}

interface ApiBuildCache {
  ID: string;
  Size: number;
  InUse: boolean;
  Shared: boolean;
  CreatedAt?: string;
  LastUsedAt?: string | null;
}

export interface ApiDiskUsage {
  LayersSize: number;
  Images?: ApiImageSummary[] | null;
  Containers?: ApiContainerSummary[] | null;
  Volumes?: ApiVolume[] | null;
  BuildCache?: ApiBuildCache[] | null;
}

/** Dangling images show `<none>:<none>` (API < 1.45), `null` or `[]` depending on the daemon. */
export function realTags(tags: string[] | null | undefined): string[] {
  return (tags ?? []).filter((t) => t !== '<none>:<none>');
}

/** The containerd image store reports itself in `/info` as driver-type io.containerd.snapshotter.v1. */
export function isContainerdStore(driverStatus: [string, string][] | null | undefined): boolean {
  return (driverStatus ?? []).some(
    ([key, value]) => key === 'driver-type' && value.startsWith('io.containerd.snapshotter'),
  );
}

const seconds = (iso: string | undefined) => (iso ? Math.floor(Date.parse(iso) / 1000) || 0 : 0);

/** The daemon's per-class byte totals from one `/system/df` answer. */
export function usageOf(df: ApiDiskUsage): Usage {
  const sum = (values: number[]) => values.reduce((n, v) => n + (v > 0 ? v : 0), 0);
  return {
    layers: df.LayersSize,
    containers: sum((df.Containers ?? []).map((c) => c.SizeRw ?? 0)),
    volumes: sum((df.Volumes ?? []).map((v) => v.UsageData?.Size ?? 0)),
    buildCache: sum((df.BuildCache ?? []).filter((r) => !r.Shared).map((r) => r.Size)),
  };
}

export async function takeInventory(docker: DockerApi, concurrency: number): Promise<Inventory> {
  const takenAt = Date.now();
  // Deleted between the listing and a later call (another run, a user): no longer there to plan.
  const unlessGone = <T>(call: Promise<T>) =>
    call.catch((error) =>
      (error as { statusCode?: number }).statusCode === 404 ? undefined : Promise.reject(error),
    );

  // The per-image inspects start as soon as the image list is in, while /system/df is still computing.
  const listing = docker.request<ApiImageSummary[]>('GET', '/images/json', { all: true });
  const inspecting = listing.then((summaries) =>
    mapPool(summaries, concurrency, (summary) =>
      unlessGone(docker.request<{ RootFS?: { Layers?: string[] } }>('GET', `/images/${summary.Id}/json`)),
    ),
  );
  const [version, info, summaries, containers, networks, df, inspected] = await Promise.all([
    docker.request<{ ApiVersion: string }>('GET', '/version'),
    docker.request<{ DockerRootDir?: string; DriverStatus?: [string, string][] | null }>('GET', '/info'),
    listing,
    docker.request<ApiContainerSummary[]>('GET', '/containers/json', { all: true }),
    docker.request<ApiNetwork[]>('GET', '/networks'),
    diskUsage(docker),
    inspecting,
  ]);
  const present = summaries
    .map((summary, i) => ({ summary, layers: inspected[i]?.RootFS?.Layers ?? [], gone: !inspected[i] }))
    .filter((entry) => !entry.gone);

  const imageStore = isContainerdStore(info.DriverStatus) ? 'containerd' : 'classic';
  // On the containerd store an image's Size includes its content-store blobs, so df's Size - SharedSize
  // is no layer total: every image is sized from its history there.
  const dfImages = new Map<string, DfImage>(
    imageStore === 'classic'
      ? (df.Images ?? []).map((i) => [i.Id, { size: i.Size, shared: i.SharedSize ?? -1 }])
      : [],
  );
  const sizing = planLayerSizing(
    present.map(({ summary, layers }) => ({ id: summary.Id, layers, size: summary.Size })),
    dfImages,
    imageStore === 'classic',
  );
  const histories = new Map<string, number[]>();
  await mapPool(sizing.history, concurrency, async (id) => {
    const steps = await unlessGone(docker.request<{ Size: number }[]>('GET', `/images/${id}/history`));
    if (steps)
      histories.set(
        id,
        steps.map((step) => step.Size),
      );
  });
  const sized = sizing.resolve(histories);

  const sizeRw = new Map((df.Containers ?? []).map((c) => [c.Id, c.SizeRw ?? 0]));
  return {
    images: present.map(({ summary, layers }): ImageInfo => ({
      id: summary.Id,
      repoTags: realTags(summary.RepoTags),
      repoDigests: (summary.RepoDigests ?? []).filter((d) => d !== '<none>@<none>'),
      created: summary.Created,
      size: summary.Size,
      labels: summary.Labels ?? {},
      parentId: summary.ParentId ?? '',
      layers,
      layerSizes: sized.get(summary.Id)?.sizes ?? layers.map(() => 0),
      layerSizesExact: sized.get(summary.Id)?.exact ?? false,
    })),
    containers: containers.map((c): ContainerInfo => ({
      id: c.Id,
      names: (c.Names ?? []).map((n) => n.replace(/^\//, '')),
      imageId: c.ImageID,
      image: c.Image,
      state: c.State,
      created: c.Created,
      labels: c.Labels ?? {},
      sizeRw: sizeRw.get(c.Id) ?? 0,
      networks: [
        ...Object.entries(c.NetworkSettings?.Networks ?? {}).flatMap(([name, n]) => [
          name,
          n.NetworkID ?? '',
        ]),
        c.HostConfig?.NetworkMode ?? '',
      ].filter(Boolean),
      volumes: (c.Mounts ?? []).filter((m) => m.Type === 'volume' && m.Name).map((m) => m.Name as string),
    })),
    networks: networks.map((n) => ({
      id: n.Id,
      name: n.Name,
      driver: n.Driver,
      scope: n.Scope,
      labels: n.Labels ?? {},
      created: seconds(n.Created),
    })),
    volumes: (df.Volumes ?? []).map((v) => ({
      name: v.Name,
      driver: v.Driver,
      labels: v.Labels ?? {},
      size: v.UsageData?.Size ?? -1,
      refCount: v.UsageData?.RefCount ?? -1,
      created: seconds(v.CreatedAt),
    })),
    buildCache: (df.BuildCache ?? []).map((r) => ({
      id: r.ID,
      size: r.Size,
      inUse: r.InUse,
      shared: r.Shared,
      lastUsedMs: Date.parse(r.LastUsedAt ?? r.CreatedAt ?? '') || 0,
    })),
    layersSize: df.LayersSize,
    usage: usageOf(df),
    apiVersion: version.ApiVersion,
    rootDir: info.DockerRootDir ?? '',
    imageStore,
    takenAt,
  };
}

/**
 * `/system/df`, waiting while another client's runs: the daemon computes one at a time and refuses a
 * second with "a disk usage operation is already running" (two runs of this action at once do this).
 */
export async function diskUsage(docker: DockerApi, attempts = 50): Promise<ApiDiskUsage> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await docker.request<ApiDiskUsage>('GET', '/system/df');
    } catch (error) {
      if (attempt >= attempts || !/already running/i.test(messageOf(error))) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** Docker's per-class byte totals now, for measuring what a prune freed. */
export async function measureUsage(docker: DockerApi): Promise<Usage> {
  return usageOf(await diskUsage(docker));
}
