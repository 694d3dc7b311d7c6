// The budget's planning cost, as pure code on a synthetic inventory shaped like the bench fleet (8 tags per
// repository over shared layers, a fifth of the images dangling, a tenth in use): planRemovals alone, and
// planWithBudget with a budget met halfway through the candidates and with one that cannot be met (every
// candidate ordered and sized one at a time).
import { createHash } from 'node:crypto';
import { planWithBudget, type BudgetPolicy } from '../src/policy/budget';
import { planRemovals } from '../src/policy/plan';
import { inventoryOf } from '../__tests__/support/inventory';
import type { ContainerInfo, ImageInfo, Inventory } from '../src/types';

const NOW = Date.parse('2025-01-01T00:00:00Z');
const hex = (s: string) => createHash('sha256').update(s).digest('hex');

export function syntheticInventory(count: number): Inventory {
  const images: ImageInfo[] = [];
  const containers: ContainerInfo[] = [];
  for (let i = 0; i < count; i++) {
    const repo = Math.floor(i / 8);
    const dangling = i % 5 === 4;
    const layers = [`base-${repo % 25}`, `repo-${repo}`, `own-${i}`];
    const sizes = [30_000_000, 5_000_000, 200_000 + (i % 97) * 1000];
    images.push({
      id: `sha256:${hex(`image-${i}`)}`,
      repoTags: dangling ? [] : [`bench/r${repo}:t${i % 8}`],
      repoDigests: [],
      createdMs: NOW - (count - i) * 60_000,
      size: sizes.reduce((n, s) => n + s, 0),
      labels: {},
      parentId: '',
      layers: layers.map((l) => `sha256:${hex(l)}`),
      layerSizes: sizes,
      layerSizesExact: true,
      lastTagMs: NOW - (i % 13) * 3_600_000,
    });
    if (i % 10 === 0) {
      containers.push({
        id: hex(`container-${i}`),
        names: [`c${i}`],
        imageId: images[i].id,
        image: images[i].id,
        state: 'exited',
        createdMs: NOW - 3_600_000,
        labels: {},
        sizeRw: 1000,
        networks: [],
        volumes: [],
        finishedMs: NOW - 1_800_000,
      });
    }
  }
  return inventoryOf(images, containers, { takenAt: NOW });
}

/** Median milliseconds of planning `count` images: without a budget, with one met halfway, with one never met. */
export function benchBudgetPlan(count = 5000, rounds = 5): Record<string, number> {
  const inventory = syntheticInventory(count);
  const policy: BudgetPolicy = { mode: 'prune', images: 'unused', protect: [], keepRecent: 1 };
  const disk = { freeBytes: 1e9, totalBytes: 1e12, freeInodes: 1e6, totalInodes: 1e7 };
  const lastUsed = new Map(inventory.images.map((image) => [image.id, image.lastTagMs ?? 0]));
  const removable = planRemovals(inventory, policy, NOW).estimate.total;
  const cases: [string, () => unknown][] = [
    ['no budget (planRemovals)', () => planRemovals(inventory, policy, NOW)],
    [
      'free-space met halfway',
      () =>
        planWithBudget(
          inventory,
          { ...policy, freeSpace: { text: 'half', amount: 1e9 + removable / 2 } },
          NOW,
          {
            disk,
            lastUsed,
          },
        ),
    ],
    [
      'free-space never met (every candidate)',
      () =>
        planWithBudget(inventory, { ...policy, freeSpace: { text: '99%', percent: 99 } }, NOW, {
          disk,
          lastUsed,
        }),
    ],
  ];
  const out: Record<string, number> = {};
  for (const [name, fn] of cases) {
    const times: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const started = performance.now();
      fn();
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    out[name] = Math.round(times[times.length >> 1] * 10) / 10;
  }
  return out;
}
