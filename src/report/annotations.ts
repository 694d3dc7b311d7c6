// The pull request's annotations: notices of the images a report would remove, one per repository.

import { neutralise } from '../text';
import { formatBytes, shortId } from './format';
import { groupByRepository, type ImageRow } from './rows';
import { sumOf } from '../collections';

export interface Annotation {
  title: string;
  message: string;
}

/**
 * The runner keeps 4,096 characters of an annotation's message and GitHub 255 of its title; a longer
 * list ends with how many more there are.
 */
const ANNOTATION_MESSAGE = 4000;
const ANNOTATION_TITLE = 255;
/** Tags of one image named in a notice. */
const ANNOTATION_TAGS = 3;

/** `items` joined by `, ` up to `limit` characters (with `tail` after), then how many more. */
function joinWithin(items: string[], tail: string, limit: number, noun: string): string {
  const shown: string[] = [];
  let length = tail.length;
  for (const [i, item] of items.entries()) {
    const more = `… and ${items.length - i} more ${noun} (see the JSON report)`;
    // Room for this item, and for the line counting the rest should later items not fit.
    const need = length + (shown.length > 0 ? 2 : 0) + item.length;
    if (need + (i < items.length - 1 ? 2 + more.length : 0) > limit) {
      shown.push(more);
      break;
    }
    shown.push(item);
    length = need;
  }
  return shown.join(', ') + tail;
}

const clip = (text: string, limit: number) => (text.length > limit ? `${text.slice(0, limit - 1)}…` : text);

/** Notices for a pull request: one per repository, rolled up so that there are at most `limit`. */
export function removalAnnotations(rows: ImageRow[], limit = 10): Annotation[] {
  const groups = groupByRepository(rows.filter((r) => r.state === 'would-remove'))
    .map(([repository, members]) => ({
      repository,
      members,
      bytes: sumOf(members, (r) => r.image.size),
    }))
    .sort((a, b) => b.bytes - a.bytes || a.repository.localeCompare(b.repository));
  const name = ({ image }: ImageRow) => {
    const tags = image.repoTags;
    if (tags.length === 0) return shortId(image.id);
    const more = tags.length > ANNOTATION_TAGS ? ` +${tags.length - ANNOTATION_TAGS} more tag(s)` : '';
    return neutralise(tags.slice(0, ANNOTATION_TAGS).join(' ')) + more;
  };
  const shown = groups.length > limit ? groups.slice(0, limit - 1) : groups;
  const notes = shown.map((g) => ({
    // Neutralised before clipping, so the shown forms count towards the limits.
    title: clip(`Would remove ${g.members.length} image(s) of ${neutralise(g.repository)}`, ANNOTATION_TITLE),
    message: joinWithin(
      g.members.map(name),
      ` (${formatBytes(g.bytes)} in Docker's image sizes)`,
      ANNOTATION_MESSAGE,
      'image(s)',
    ),
  }));
  const rest = groups.slice(shown.length);
  if (rest.length > 0) {
    const count = sumOf(rest, (g) => g.members.length);
    notes.push({
      title: `Would remove ${count} more image(s) in ${rest.length} more repositories`,
      message: joinWithin(
        rest.map((g) => `${neutralise(g.repository)} (${g.members.length})`),
        '',
        ANNOTATION_MESSAGE,
        'repositories',
      ),
    });
  }
  return notes;
}
