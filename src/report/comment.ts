// The pull-request comment, as a pure function of the run's facts: the summary's headline, the disk, the
// runner images and the biggest items, with every user-controlled string escaped as in the job summary.
// A hidden marker names the workflow and job, so later runs find the comment again and edit it.

import type { RunFacts } from './facts';
import { formatBytes, shortId } from './format';
import type { ImageRow } from './rows';
import { sectionsOf } from './sections';
import { escapeHtml } from './summary';

/** Every comment of this action starts with this. */
export const MARKER_PREFIX = '<!-- safe-docker-prune';

/**
 * The hidden marker of one workflow's job: `<!-- safe-docker-prune job="CI/test" -->`. Only characters
 * that cannot end the HTML comment or the attribute are kept, so a workflow name cannot forge or break it.
 */
export function commentMarker(workflow: string, job: string): string {
  const clean = (text: string) => text.replace(/[^\w .:/@+=-]/g, '_').slice(0, 100);
  return `${MARKER_PREFIX} job="${clean(workflow)}/${clean(job)}" -->`;
}

/** How many of the biggest removals the comment lists. */
const BIGGEST = 5;
const MAX_TAGS = 3;

export function renderComment(facts: RunFacts, rows: ImageRow[], marker: string): string {
  const { title, totals, head, prune, runner, removed } = sectionsOf(facts, rows);
  const out: string[] = [marker];
  out.push(`### ${title}`);
  out.push(`**${escapeHtml(head.action)}** ${escapeHtml(head.rest)}`);

  const freeBefore = facts.diskFreeBefore;
  if (freeBefore !== undefined) {
    // Report mode: what the disk would have if the plan ran (the estimate added to today's free space).
    const after = prune ? facts.diskFreeAfter : freeBefore + totals.estimatedBytes;
    out.push(
      `Free disk: ${formatBytes(freeBefore)} before, ` +
        (after === undefined ? 'unknown after' : `${prune ? '' : 'about '}${formatBytes(after)} after`),
    );
  } else {
    out.push('Free disk: unknown (the daemon is not on this machine)');
  }
  if (runner) out.push(escapeHtml(runner));

  const going = [...removed].sort(
    (a, b) => b.uniqueBytes - a.uniqueBytes || a.image.id.localeCompare(b.image.id),
  );
  if (going.length > 0) {
    const cell = (r: ImageRow) => {
      const tags = r.image.repoTags.slice(0, MAX_TAGS).map((t) => `<code>${escapeHtml(t)}</code>`);
      if (r.image.repoTags.length > MAX_TAGS) tags.push(`+${r.image.repoTags.length - MAX_TAGS} more`);
      return tags.length > 0
        ? tags.join(' ')
        : `<code>${escapeHtml(shortId(r.image.id))}</code> <i>untagged</i>`;
    };
    const lines = going
      .slice(0, BIGGEST)
      .map(
        (r) =>
          `<tr><td>${cell(r)}</td><td>${formatBytes(r.uniqueBytes)}</td><td>${escapeHtml(r.detail)}</td></tr>`,
      );
    out.push(
      `${prune ? 'Biggest removed' : 'Biggest to remove'} (${Math.min(BIGGEST, going.length)} of ${going.length}):\n\n` +
        `<table>\n<tr><th>Image</th><th>Unique</th><th>Why</th></tr>\n${lines.join('\n')}\n</table>`,
    );
  }
  out.push(
    `<sub>${escapeHtml(head.daemon)} · the job summary and the JSON report have every image and reason</sub>`,
  );
  return out.join('\n\n') + '\n';
}
