// Prometheus text format for node_exporter's textfile collector, as a pure function of one pass.

import type { Inputs } from '../types';
import type { RunFacts } from './facts';
import type { Totals } from './figures';

export interface MetricsPass {
  daemon: string;
  mode: string;
  ok: boolean;
  /** Epoch milliseconds when the pass ended. */
  endedMs: number;
  durationMs: number;
  removed: { images: number; containers: number; networks: number; volumes: number };
  keptImages: number;
  estimatedBytes: number;
  /** The estimate's range; both ends equal `estimatedBytes` when it is exact. */
  estimatedBytesLow: number;
  estimatedBytesHigh: number;
  reclaimedBytes: number;
  diskFreeBefore?: number;
  diskFreeAfter?: number;
  inodesFreeBefore?: number;
  inodesFreeAfter?: number;
  /** With a budget: whether it is met (after a prune as measured; in report mode before). */
  budgetMet?: boolean;
  /** With a budget: bytes it lacks even after every allowed removal. */
  budgetShortfallBytes?: number;
  /** The forecast: seconds until the disk (inodes) is full, Infinity when not filling; its sample count. */
  secondsToFull?: number;
  secondsToInodesFull?: number;
  forecastSamples?: number;
  /** Images removed by this tool and seen again within the window, and the bytes their removals freed. */
  refetchedImages?: number;
  refetchedBytes?: number;
  /** Bytes used under the data root that the daemon does not account for (a lower bound when not complete). */
  unaccountedBytes?: number;
}

/** How a pass ran, beside what it did: its inputs, whether it succeeded, when it ended, how long it took. */
export interface PassRun {
  inputs: Pick<Inputs, 'dockerHost' | 'mode'>;
  ok: boolean;
  /** Epoch milliseconds when the pass ended. */
  endedMs: number;
  durationMs: number;
}

/**
 * The metrics input of one pass: its outcome's totals and disk figures (zero, or absent, when the pass
 * has none: it failed early, or a safety gate stopped it), the daemon it ran against and how it ran.
 */
export function metricsOf(
  outcome: { facts?: RunFacts; totals?: Totals } | undefined,
  { inputs, ok, endedMs, durationMs }: PassRun,
): MetricsPass {
  const facts = outcome?.facts;
  const totals = outcome?.totals;
  const budget = facts?.plan.budget;
  return {
    daemon: facts?.host ?? inputs.dockerHost ?? 'unix:///var/run/docker.sock',
    mode: inputs.mode,
    ok,
    endedMs,
    durationMs,
    removed: {
      images: totals?.removed ?? 0,
      containers: totals?.removedContainers ?? 0,
      networks: totals?.removedNetworks ?? 0,
      volumes: totals?.removedVolumes ?? 0,
    },
    keptImages: totals?.kept ?? 0,
    estimatedBytes: totals?.estimatedBytes ?? 0,
    estimatedBytesLow: totals?.estimatedBytesLow ?? 0,
    estimatedBytesHigh: totals?.estimatedBytesHigh ?? 0,
    reclaimedBytes: totals?.reclaimedBytes ?? 0,
    diskFreeBefore: facts?.diskFreeBefore,
    diskFreeAfter: facts?.diskFreeAfter,
    inodesFreeBefore: facts?.inodesFreeBefore,
    inodesFreeAfter: facts?.inodesFreeAfter,
    budgetMet: budget && (budget.metAfterPrune ?? budget.metAtStart),
    budgetShortfallBytes: budget?.shortfallBytes,
    ...trendMetrics(facts),
    ...(facts?.unaccounted && !('why' in facts.unaccounted)
      ? { unaccountedBytes: facts.unaccounted.unaccountedBytes }
      : {}),
  };
}

function trendMetrics(facts: RunFacts | undefined): Partial<MetricsPass> {
  const trend = facts?.trend;
  if (!trend) return {};
  const f = trend.forecast;
  const seconds = (ms: number | undefined) => (ms === undefined ? Infinity : Math.round(ms / 1000));
  return {
    ...(f
      ? {
          secondsToFull: seconds(f.msToFull),
          secondsToInodesFull: seconds(f.msToInodesFull),
          forecastSamples: f.samples,
        }
      : {}),
    refetchedImages: trend.refetch.count,
    refetchedBytes: trend.refetch.bytes,
  };
}

/** A sample value as the text format writes it (+Inf for a disk that is not filling). */
const value = (n: number) => (n === Infinity ? '+Inf' : String(n));

/** A label value escaped as the text format wants it. */
function label(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

const LAST_SUCCESS = 'safe_docker_prune_last_success_timestamp_seconds';

/**
 * The metrics of one pass. `previous` is the file's earlier content: a failed pass carries the last
 * success time over from it, so an alert on "no success for a day" works across failures.
 */
export function renderMetrics(pass: MetricsPass, previous = ''): string {
  const d = `daemon="${label(pass.daemon)}"`;
  const out: string[] = [];
  const metric = (name: string, type: string, help: string, samples: [string, number | undefined][]) => {
    const present = samples.filter((s): s is [string, number] => s[1] !== undefined);
    if (present.length === 0) return;
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, n] of present) out.push(`${name}{${labels}} ${value(n)}`);
  };
  const mode = `mode="${label(pass.mode)}"`;
  metric('safe_docker_prune_success', 'gauge', 'Whether the last pass succeeded (1) or failed (0).', [
    [`${d},${mode}`, pass.ok ? 1 : 0],
  ]);
  metric(
    'safe_docker_prune_removed',
    'gauge',
    'Objects the last pass removed (prune) or would remove (report), by kind.',
    Object.entries(pass.removed).map(([kind, n]) => [`${d},${mode},kind="${kind}"`, n]),
  );
  metric('safe_docker_prune_kept_images', 'gauge', 'Images the last pass kept.', [
    [`${d},${mode}`, pass.keptImages],
  ]);
  metric(
    'safe_docker_prune_estimated_bytes',
    'gauge',
    'Bytes the last plan frees, estimated before removing.',
    [[`${d},${mode}`, pass.estimatedBytes]],
  );
  metric(
    'safe_docker_prune_estimated_bytes_bound',
    'gauge',
    'The least (low) and the most (high) bytes the last plan frees; both the estimate when it is exact.',
    [
      [`${d},${mode},bound="low"`, pass.estimatedBytesLow],
      [`${d},${mode},bound="high"`, pass.estimatedBytesHigh],
    ],
  );
  metric('safe_docker_prune_reclaimed_bytes', 'gauge', 'Bytes the last prune freed, measured.', [
    [`${d},${mode}`, pass.reclaimedBytes],
  ]);
  metric('safe_docker_prune_disk_free_bytes', 'gauge', "Free bytes on the daemon's data-root filesystem.", [
    [`${d},when="before"`, pass.diskFreeBefore],
    [`${d},when="after"`, pass.diskFreeAfter],
  ]);
  metric('safe_docker_prune_disk_free_inodes', 'gauge', "Free inodes on the daemon's data-root filesystem.", [
    [`${d},when="before"`, pass.inodesFreeBefore],
    [`${d},when="after"`, pass.inodesFreeAfter],
  ]);
  metric('safe_docker_prune_budget_met', 'gauge', 'Whether the disk budget is met (1) or not (0).', [
    [d, pass.budgetMet === undefined ? undefined : pass.budgetMet ? 1 : 0],
  ]);
  metric(
    'safe_docker_prune_budget_shortfall_bytes',
    'gauge',
    'Bytes the disk budget lacks after every allowed removal.',
    [[d, pass.budgetShortfallBytes]],
  );
  trendMetricLines(pass, d, metric);
  metric('safe_docker_prune_duration_seconds', 'gauge', 'How long the last pass took.', [
    [d, Math.round(pass.durationMs) / 1000],
  ]);
  const carried = new RegExp(`^${LAST_SUCCESS}\\{[^}]*\\} (\\S+)$`, 'm').exec(previous)?.[1];
  metric(LAST_SUCCESS, 'gauge', 'When a pass last succeeded (unix seconds).', [
    [d, pass.ok ? Math.floor(pass.endedMs / 1000) : carried === undefined ? undefined : Number(carried)],
  ]);
  return out.join('\n') + '\n';
}

type Emit = (name: string, type: string, help: string, samples: [string, number | undefined][]) => void;

/** The forecast's and the re-fetches' metrics. */
function trendMetricLines(pass: MetricsPass, d: string, metric: Emit) {
  metric(
    'safe_docker_prune_disk_full_seconds',
    'gauge',
    'Seconds until the disk is full at the rate it filled between recent runs (+Inf: not filling), by resource.',
    [
      [`${d},resource="bytes"`, pass.secondsToFull],
      [`${d},resource="inodes"`, pass.secondsToInodesFull],
    ],
  );
  metric(
    'safe_docker_prune_unaccounted_bytes',
    'gauge',
    'Bytes used under the data root that the daemon does not account for (logs, orphaned layers, other files).',
    [[d, pass.unaccountedBytes]],
  );
  metric('safe_docker_prune_disk_forecast_samples', 'gauge', 'Runs the disk forecast rests on.', [
    [d, pass.forecastSamples],
  ]);
  metric(
    'safe_docker_prune_refetched_images',
    'gauge',
    'Images this tool removed that were pulled or built again within 7 days.',
    [[d, pass.refetchedImages]],
  );
  metric(
    'safe_docker_prune_refetched_bytes',
    'gauge',
    'Bytes the removals of the re-fetched images freed (downloaded or built again).',
    [[d, pass.refetchedBytes]],
  );
}
