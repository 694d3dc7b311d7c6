// Text from the daemon or from images (tags, labels, names, error messages) made safe for every place it
// is shown: the log the Actions runner reads for workflow commands, a terminal, the job summary and the
// pull-request comment. One function for all of them, applied where the text leaves the program.

/**
 * The runner honours `::cmd::` at a line start (and mid-line on some versions) and the legacy `##[cmd]`
 * anywhere in a line. A zero-width space between the two characters breaks both and reads the same.
 */
const COMMAND_COLON = /:(?=:)/g;
const COMMAND_HASH = /#(?=#\[)/g;
/** Line breaks, including the ones JavaScript, Unicode and some terminals know besides \n and \r. */
const LINE_BREAKS = /[\r\n\u2028\u2029\u0085]+/g;
/**
 * Shown as `\uXXXX`: C0 and C1 controls (ESC starts every terminal sequence; once shown, the rest of the
 * sequence is plain text), DEL, and the bidi controls that make a name read other than it is.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const visible = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * One line of inert text: line breaks and tabs become a space; controls and bidi controls are shown
 * as `\uXXXX`; `::` and `##[` get a zero-width space. Ordinary text (any script) is unchanged, and so is
 * text that went through it already.
 */
export function neutralise(text: string): string {
  return text
    .replace(LINE_BREAKS, ' ')
    .replace(/\t/g, ' ')
    .replace(UNSAFE, visible)
    .replace(COMMAND_COLON, ':\u200b')
    .replace(COMMAND_HASH, '#\u200b');
}

/** Each line of a text we composed (a table, a report), its line breaks kept. */
export function neutraliseLines(text: string): string {
  return text.split('\n').map(neutralise).join('\n');
}

/**
 * JSON text (one line, from JSON.stringify) for a stream the runner reads: the same characters escaped
 * as JSON `\uXXXX`, so a program parses exactly the same values. Outside strings JSON has no `:` followed
 * by `:`, no `#`, and no such characters, so every match is inside a string, where the escape is valid.
 */
export function neutraliseJson(json: string): string {
  return json
    .replace(/[\u007f-\u009f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, visible)
    .replace(COMMAND_COLON, '\\u003a')
    .replace(COMMAND_HASH, '\\u0023');
}
