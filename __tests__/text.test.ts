// The neutraliser of text from the daemon and from images: every form a runner or a terminal acts on,
// idempotence, ordinary text untouched, and the JSON form that keeps the parsed values.
import { describe, expect, it } from '@jest/globals';
import { renderComment } from '../src/report/comment';
import { removalAnnotations } from '../src/report/annotations';
import { imageRows } from '../src/report/rows';
import { renderSummary } from '../src/report/summary';
import { renderTable } from '../src/report/table';
import { neutralise, neutraliseJson, neutraliseLines } from '../src/text';
import type { ImageDecision, ImageInfo, ObjectDecision } from '../src/types';
import { factsOf, planOf } from './support/facts';
import { DAY_MS, imageInfo } from './support/objects';

const ZWSP = '\u200b';

/** What the Actions runner would act on in one line of its log, or that a terminal would. */
// eslint-disable-next-line no-control-regex
const ACTIVE = /##\[|::|[\u0000-\u001f\u007f-\u009f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

describe('neutralise', () => {
  it.each([
    // workflow commands, at the start and anywhere in a line
    ['::error::x', `:${ZWSP}:error:${ZWSP}:x`],
    ['name ::warning file=a::forged', `name :${ZWSP}:warning file=a:${ZWSP}:forged`],
    [':::', `:${ZWSP}:${ZWSP}:`],
    ['x ##[set-output name=removed-count;]999', `x #${ZWSP}#[set-output name=removed-count;]999`],
    ['##[error]pwned', `#${ZWSP}#[error]pwned`],
    ['###[stop-commands]', `##${ZWSP}#[stop-commands]`],
    ['##[group]a ##[endgroup]', `#${ZWSP}#[group]a #${ZWSP}#[endgroup]`],
    // line breaks of every kind become one space
    ['a\nb', 'a b'],
    ['a\r\nb', 'a b'],
    ['a\rb', 'a b'],
    ['a\u2028b\u2029c', 'a b c'],
    ['a\u0085b', 'a b'],
    ['a\n\n\r\nb', 'a b'],
    ['a\n::error::x', `a :${ZWSP}:error:${ZWSP}:x`],
    ['a\n##[error]x', `a #${ZWSP}#[error]x`],
    ['a\tb', 'a b'],
    // terminal sequences: ESC shown, the rest of the sequence is then plain text
    ['\u001b[31mred\u001b[0m', '\\u001b[31mred\\u001b[0m'],
    ['\u001b]0;title\u0007', '\\u001b]0;title\\u0007'],
    [
      '\u001b]8;;https://x\u001b\\link\u001b]8;;\u001b\\',
      '\\u001b]8;;https://x\\u001b\\link\\u001b]8;;\\u001b\\',
    ],
    ['\u001bPq\u001b\\', '\\u001bPq\\u001b\\'],
    ['\u001bc', '\\u001bc'],
    ['\u009b31m', '\\u009b31m'],
    ['a\u0000b\u0008c\u007fd\u0090e', 'a\\u0000b\\u0008c\\u007fd\\u0090e'],
    // bidi controls shown
    ['invoice\u202etxt.exe', 'invoice\\u202etxt.exe'],
    ['\u202a\u202b\u202c\u202d', '\\u202a\\u202b\\u202c\\u202d'],
    ['\u2066a\u2067b\u2068c\u2069', '\\u2066a\\u2067b\\u2068c\\u2069'],
    ['\u200e\u200f\u061c', '\\u200e\\u200f\\u061c'],
  ])('%j → %j', (input, expected) => {
    expect(neutralise(input)).toBe(expected);
    expect(neutralise(input)).not.toMatch(ACTIVE);
  });

  it.each([
    'registry.example.com:5000/team/app:1.2.3',
    'sha256:0123456789abcdef',
    'a: b',
    '# heading and #1 [x]',
    'café/приложение:最新',
    'שלום عربي',
    '🐳 whale',
    'keep (protected): matches protect entry "label=com.example.keep"',
    '',
  ])('leaves ordinary text alone: %j', (text) => {
    expect(neutralise(text)).toBe(text);
  });

  it.each([
    '::error::x ##[error]y',
    ':::::: ######[[[',
    '\u001b[31m\u001b]0;t\u0007\u202e\n\r\u2028\u0085\t',
    'a\\u001b[31m already shown',
    `:${ZWSP}: #${ZWSP}#[ done`,
  ])('is idempotent: %j', (text) => {
    const once = neutralise(text);
    expect(neutralise(once)).toBe(once);
    expect(once).not.toMatch(ACTIVE);
  });

  it('neutraliseLines keeps the line breaks of composed text and defuses each line', () => {
    expect(neutraliseLines('head\n::x:: a\u001b[1m\n##[error]b\n')).toBe(
      `head\n:${ZWSP}:x:${ZWSP}: a\\u001b[1m\n#${ZWSP}#[error]b\n`,
    );
  });
});

describe('neutraliseJson', () => {
  const hostile = {
    name: 'x ##[set-output name=removed-count;]999',
    cmd: '::warning::forged :::',
    esc: '\u001b[31m\u001b]0;t\u0007\u009b',
    bidi: 'a\u202eb\u2066\u200f\u061c',
    lines: 'a\nb\u2028c\u2029d\u0085e',
    path: 'C:\\::x\\##[y',
    ordinary: 'café: #1 [x] 🐳',
    nested: [{ 'key::##[': 1 }],
  };

  it('parses to the same values', () => {
    const json = JSON.stringify(hostile);
    expect(JSON.parse(neutraliseJson(json))).toEqual(hostile);
  });

  it('leaves nothing a runner or terminal acts on, on one line', () => {
    const out = neutraliseJson(JSON.stringify(hostile));
    expect(out).not.toMatch(ACTIVE);
    expect(neutraliseJson(out)).toBe(out);
  });

  it('leaves JSON without such characters unchanged', () => {
    const json = JSON.stringify({ a: 'b: c', n: 1, list: ['#', '[x]'], url: 'https://x/y' });
    expect(neutraliseJson(json)).toBe(json);
  });
});

describe('the renderers neutralise what the daemon and images say', () => {
  const NOW = Date.parse('2026-06-01T00:00:00Z');
  const hostile =
    'x ##[set-output name=removed-count;]999 ::warning::forged \u001b[31m\u001b]0;t\u0007 a\u202eb';
  const image = (n: number, tags: string[], labels: Record<string, string>): ImageInfo =>
    imageInfo({
      id: `sha256:${String(n).padStart(64, 'b')}`,
      repoTags: tags,
      createdMs: NOW - n * DAY_MS,
      size: 1000 * n,
      labels,
    });
  const network = (id: string, action: 'remove' | 'keep'): ObjectDecision => ({
    kind: 'network',
    id,
    name: hostile,
    createdMs: 0,
    size: 0,
    action,
    reason: action === 'remove' ? 'remove' : 'protected',
    detail:
      action === 'remove' ? 'no container is attached to it' : `matches protect entry "label=a=${hostile}"`,
  });
  // The daemon chooses tags, labels, names and error messages: a hostile one may say anything.
  const decisions: ImageDecision[] = [
    { image: image(1, [`evil/${hostile}:1`], {}), action: 'remove', reason: 'remove', detail: 'unused' },
    { image: image(2, ['ok/app:1'], { l: hostile }), action: 'keep', reason: 'protected', detail: hostile },
  ];
  const plan = planOf(decisions, 1000, { objects: [network('n1', 'remove'), network('n2', 'keep')] });
  const facts = factsOf(plan, NOW, {
    usageBefore: { layers: 5000, containers: 0, volumes: 0, buildCache: 0 },
    warnings: [
      `could not remove network n3: error while removing network: network ${hostile} has active endpoints`,
    ],
    failures: [hostile],
  });
  const rows = imageRows(plan);
  const annotations = removalAnnotations(rows).flatMap((a) => [a.title, a.message]);

  it.each([
    ['the command’s table', renderTable(facts, rows)],
    ['the job summary', renderSummary(facts, rows)],
    ['the pull-request comment', renderComment(facts, rows, '<!-- m -->')],
    ['the annotations', annotations.join('\n')],
  ])('%s', (_name, text) => {
    expect(text).toContain('999'); // the payload is there, as text
    expect(text.split('\n').filter((line) => ACTIVE.test(line))).toEqual([]);
  });
});
