// The budget as text: its lines (targets, what must be freed, where it is met or why not) and its
// removals in order as cells, shared by the log, the command's table and the job summary.

import type { BudgetPlan } from '../types';
import { formatAge, formatBytes } from './format';

/**
 * The budget in plain lines, shared by the log, the command's table and the job summary: each target
 * against the state before (and after a prune), what must be freed, and where it is met or why not.
 */
export function budgetLines(b: BudgetPlan): string[] {
  const out = targetLines(b);
  if (b.metAtStart) out.push('every budget line is met already: nothing is removed');
  else if (b.unmeasurable.length > 0 && b.steps.length === 0 && b.needBytes === 0) {
    out.push('no budget can be measured here: nothing is removed');
  } else out.push(...removalLines(b));
  if (b.metAfterPrune !== undefined) {
    out.push(
      b.metAfterPrune ? 'after the prune: every budget is met' : 'after the prune: the budget is NOT met',
    );
  }
  return out;
}

/** `5 GB before, 9 GB after` (after only when measured). */
const then = (now: string, later?: string) => `${now} before${later === undefined ? '' : `, ${later} after`}`;

/** A watermark: the line that starts removal, beside the target where it stops. */
const startOf = (start: { text: string; figure?: string } | undefined, target: { text: string }) =>
  start && start.text !== target.text && start.figure !== undefined
    ? `, removal starts below ${start.figure} (${start.text})`
    : '';

/** Each target (free space, free inodes, daemon usage) against the state before, and after a prune. */
function targetLines(b: BudgetPlan): string[] {
  const out: string[] = [];
  const after = b.after;
  const { freeSpace, freeInodes, maxUsage } = b.targets;
  const starts = b.starts ?? b.targets;
  if (freeSpace) {
    out.push(
      freeSpace.bytes === undefined
        ? `free space ${freeSpace.text}: cannot be measured here`
        : `free space ≥ ${formatBytes(freeSpace.bytes)} (${freeSpace.text}` +
            startOf(
              starts.freeSpace && {
                text: starts.freeSpace.text,
                figure:
                  starts.freeSpace.bytes === undefined ? undefined : formatBytes(starts.freeSpace.bytes),
              },
              freeSpace,
            ) +
            '): ' +
            then(
              `${formatBytes(b.before.freeBytes ?? 0)} free`,
              after?.freeBytes === undefined ? undefined : formatBytes(after.freeBytes),
            ),
    );
  }
  if (freeInodes) {
    out.push(
      freeInodes.inodes === undefined
        ? `free inodes ${freeInodes.text}: cannot be measured here`
        : `free inodes ≥ ${freeInodes.inodes} (${freeInodes.text}` +
            startOf(
              starts.freeInodes && {
                text: starts.freeInodes.text,
                figure: starts.freeInodes.inodes === undefined ? undefined : String(starts.freeInodes.inodes),
              },
              freeInodes,
            ) +
            '): ' +
            then(
              `${b.before.freeInodes ?? 0} free`,
              after?.freeInodes === undefined ? undefined : String(after.freeInodes),
            ),
    );
  }
  if (maxUsage) {
    out.push(
      `daemon usage ≤ ${formatBytes(maxUsage.bytes)}` +
        (starts.maxUsage && starts.maxUsage.bytes !== maxUsage.bytes
          ? ` (removal starts above ${formatBytes(starts.maxUsage.bytes)})`
          : '') +
        ': ' +
        then(`${formatBytes(b.before.usage)} used`, after ? formatBytes(after.usage) : undefined),
    );
  }
  return out;
}

/** What crossed, what must be freed, where it is met or why it cannot be, and what holds space. */
function removalLines(b: BudgetPlan): string[] {
  const out: string[] = [];
  const total = b.steps.at(-1)?.runningTotal ?? 0;
  if (b.triggeredBy?.length) {
    out.push(`crossed: ${b.triggeredBy.join(', ')}; removing until every target is met`);
  }
  out.push(
    `to free: ${formatBytes(b.needBytes)}` +
      (b.needInodes ? ` and ${b.needInodes} inodes (measured during the prune, after each removal)` : ''),
  );
  if (b.metAfter !== undefined) {
    out.push(
      `met after removal ${b.metAfter} of ${b.steps.length} (running total ${formatBytes(total)}); ` +
        `${b.notNeeded} more candidate(s) kept: budget met`,
    );
  } else if (b.shortfallBytes > 0) {
    out.push(
      `cannot be met: every allowed removal (${b.steps.length}) frees ${formatBytes(total)}, ` +
        `${formatBytes(b.shortfallBytes)} short`,
    );
  } else if (b.needInodes) {
    out.push(`${b.steps.length} removal(s) at most, in order, stopping once the inodes are free`);
  }
  for (const h of b.holding) out.push(`held by ${h.kind} ${h.name}: ${formatBytes(h.bytes)}, ${h.reason}`);
  return out;
}

/** The budget's removals in order, as text cells: #, kind, name, last used, bytes, running total, met. */
export function budgetStepCells(b: BudgetPlan, nowMs: number): string[][] {
  return b.steps.map((step, i) => [
    String(i + 1),
    step.kind,
    step.name,
    step.lastUsedMs
      ? `${formatAge(step.lastUsedMs / 1000, nowMs)} ago`
      : step.kind === 'build-cache'
        ? ''
        : 'never',
    formatBytes(step.bytes),
    formatBytes(step.runningTotal),
    b.metAfter === i + 1 ? 'budget met' : '',
  ]);
}
