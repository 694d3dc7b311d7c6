// Plain-data plans and run facts for unit tests of the renderers: what a pass hands them, every field
// defaulted (a report of a Docker 20.10 classic store at unix:///x.sock), overridable.
import type { RunFacts } from '../../src/report/facts';
import type { ImageDecision, Plan } from '../../src/types';
import { inventoryOf } from './inventory';

/** A plan of these image decisions and nothing else, its estimate exact at `estimatedBytes`. */
export function planOf(images: ImageDecision[], estimatedBytes: number, extra: Partial<Plan> = {}): Plan {
  return {
    mode: 'report',
    images,
    cascade: [],
    noPrune: [],
    untagOnly: [],
    objects: [],
    estimate: { images: estimatedBytes, containers: 0, volumes: 0, buildCache: 0, total: estimatedBytes },
    estimatedBytes,
    estimateExact: true,
    estimateMethod: { method: 'layer-graph', exact: true, note: 'Exact.' },
    unmatchedProtect: [],
    ...extra,
  };
}

/** The facts of a run of `plan` at `nowMs`, its usage counted as layers alone. */
export function factsOf(plan: Plan, nowMs: number, extra: Partial<RunFacts> = {}): RunFacts {
  return {
    plan,
    host: 'unix:///x.sock',
    engine: inventoryOf([]).engine,
    nowMs,
    usageBefore: { layers: 0, containers: 0, volumes: 0, buildCache: 0 },
    measured: ['layers'],
    timings: {},
    warnings: [],
    ...extra,
  };
}
