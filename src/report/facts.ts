// The run's facts: what one pass planned, did and measured, the input of every renderer.

import type { NotMeasured, Unaccounted } from '../engine/unaccounted';
import type { Trend } from '../policy/trend';
import type {
  DataRootDisk,
  DiskPlace,
  EngineInfo,
  GateResult,
  Plan,
  RemovalResult,
  ObjectResult,
  BuildCacheResult,
  Usage,
} from '../types';

export interface RunFacts {
  plan: Plan;
  /** Undefined in report mode. */
  results?: RemovalResult[];
  objectResults?: ObjectResult[];
  buildCacheResult?: BuildCacheResult;
  host: string;
  engine: EngineInfo;
  nowMs: number;
  usageBefore: Usage;
  /** Prune mode: the daemon's totals after the removals (undefined if it did not answer). */
  usageAfter?: Usage;
  /** The classes whose totals make up the measured figure. */
  measured: (keyof Usage)[];
  /** Free bytes of the disk holding Docker's data; undefined when unknown (a remote daemon). */
  diskFreeBefore?: number;
  /** The size of that filesystem, bytes; undefined when unknown. */
  diskTotal?: number;
  diskFreeAfter?: number;
  /** Free inodes of that filesystem; undefined when unknown. */
  inodesFreeBefore?: number;
  inodesFreeAfter?: number;
  /** The path those figures measure, what it holds and why (undefined when nothing could be measured). */
  diskPlace?: DiskPlace;
  /** The data root's figures when the measured path is on another filesystem (the containerd store's root). */
  dataRootDisk?: DataRootDisk;
  /** The data root's space the daemon does not account for (src/engine/unaccounted.ts), or why not known. */
  unaccounted?: Unaccounted | NotMeasured;
  /** The disk forecast and the re-fetches, from the usage history (undefined when it could not be written). */
  trend?: Trend;
  timings: Record<string, number>;
  warnings: string[];
  gates?: GateReport;
  /** Why the step fails, if it does. */
  failures?: string[];
}

export interface GateReport {
  before: GateResult[];
  after?: GateResult[];
}
