// Hostile strings: image labels, protect entries, critical container names and other inputs carrying
// Markdown, HTML, backticks, `|`, newlines and workflow-command sequences (`::error::`, `::set-output`,
// `##[error]`). They must not change the job summary's structure (compared line kind by line kind with a
// run on harmless strings of the same shape) and must not put a workflow command into the log.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { runAction, type ActionRun } from './support/action';
import { describeDocker, startDaemon, type PrivateDaemon } from './support/daemon';
import { clearDaemon, loadImages, type ImageSpec } from './support/fleet';

/** Every payload carries this marker, so the tests can check it reached the summary and the log. */
const MARK = 'PWN';

interface Strings {
  /** A label key, used in a protect entry as `label=KEY` (no comma, no newline: entries split on those). */
  key: string;
  /** A label value on one line, used in a protect entry as `label=sdp.note=VALUE`. */
  oneLine: string;
  /** A label value over several lines (labels only). */
  multiLine: string;
  /** Protect entries that match no image (each is warned about). */
  unmatched: string[];
}

const HOSTILE: Strings = {
  key: `sdp.evil<script>alert(1)</script>|\`${MARK}\`#x::error::${MARK}-key`,
  oneLine: `<img src=x onerror=alert('${MARK}')> | \`${MARK}\` **b** # ${MARK} ::error::${MARK}-entry ##[error]${MARK} </td></tr><tr><td>`,
  multiLine: [
    `${MARK}-label`,
    `::error::${MARK}-label-injected`,
    `## ${MARK} heading`,
    `<script>alert('${MARK}')</script>`,
    `| ${MARK} | cell |`,
    `\`${MARK}\` **bold** [x](javascript:alert(1))`,
    `##[error]${MARK}-legacy`,
    `::set-output name=removed-count::999`,
    `::stop-commands::${MARK}token`,
  ].join('\n'),
  unmatched: [
    `label=${MARK}::set-output name=removed-count::999`,
    `label=nothing<script>alert('${MARK}')</script>|x|`,
  ],
};

/** Critical container names no container can have: an input error, which must not inject either. */
const HOSTILE_CONTAINERS = [
  `<script>alert('${MARK}')</script>`,
  `::error::${MARK}-gate`,
  `## ${MARK} heading`,
  `| ${MARK} | x |`,
];

/** The same shapes, harmless: the summary must have the same structure with either. */
const PLAIN: Strings = {
  key: `sdp.evil.plain.${MARK}`,
  oneLine: `${MARK} plain one line`,
  multiLine: `${MARK} plain`,
  unmatched: [`label=${MARK}.set.output`, `label=nothing.${MARK}`],
};

const DAY = 86_400_000;
const NOW = Date.now();

function fleet(s: Strings): ImageSpec[] {
  const image = (n: number, labels: Record<string, string>, tags = [`hostile/app:${n}`]): ImageSpec => ({
    tags,
    name: `hostile-${n}`,
    layers: [{ key: `hostile-${n}`, bytes: 2_000 + n }],
    created: new Date(NOW - (20 + n) * DAY),
    labels,
  });
  return [
    image(1, { [s.key]: 'x', 'sdp.note': s.multiLine }), // protected by label=KEY
    image(2, { 'sdp.note': s.oneLine }), // protected by label=sdp.note=VALUE
    image(3, { 'sdp.note': s.multiLine, 'sdp.other': `${s.oneLine}${s.key}` }), // removed
    image(4, { 'sdp.note': s.multiLine, 'sdp.other': s.oneLine }, []), // dangling, removed
    image(5, { 'org.opencontainers.image.title': s.multiLine }), // removed
  ];
}

const protect = (s: Strings) => [`label=${s.key}`, `label=sdp.note=${s.oneLine}`, ...s.unmatched].join('\n');

// --- checks -----------------------------------------------------------------------------------------

const OWN_COMMAND = /^::(group|endgroup|notice|warning|error|debug)(?: [^:\n]*)?::/;
const COMMAND_WORD =
  /::\s*(error|warning|notice|debug|group|endgroup|set-output|set-env|add-path|add-mask|stop-commands|save-state|add-matcher|remove-matcher|echo)\b/i;

/**
 * The runner reads workflow commands from stdout and stderr at the start of a line (`::cmd::` and the
 * legacy `##[cmd]`). Only the action's own commands may start a line, and none may carry a command of
 * the payload in its message.
 */
function expectLogSafe(run: ActionRun): void {
  const offending: string[] = [];
  for (const [stream, text] of [
    ['stdout', run.stdout],
    ['stderr', run.stderr],
  ]) {
    for (const line of text.split(/\r?\n/)) {
      const t = line.trimStart();
      if (t.startsWith('##[')) offending.push(`${stream}: ${line}`);
      if (!t.startsWith('::')) continue;
      const own = OWN_COMMAND.exec(t);
      if (!own || COMMAND_WORD.test(t.slice(own[0].length))) offending.push(`${stream}: ${line}`);
    }
  }
  expect(offending).toEqual([]);
  expect(run.stdout).toContain(MARK); // the payload did reach the log
}

/** The summary's structure is intact: rows on one line, no raw HTML or Markdown from the payload. */
function expectSummarySafe(summary: string): void {
  expect(summary).toContain(MARK); // the payload did reach the summary
  expect(summary).not.toMatch(/<script|<img|<iframe/i);
  const lines = summary.split('\n');
  const count = (text: string, token: string) => text.split(token).length - 1;
  const bad = lines.filter(
    (l) =>
      // a table row: one per line, whole
      (l.includes('<tr') && (!/^<tr>.*<\/tr>$/.test(l) || count(l, '<tr') !== 1)) ||
      count(l, '<td>') !== count(l, '</td>') ||
      // payload text as a heading, a Markdown table, a quote, a fence or a command
      (l.includes(MARK) && /^\s{0,3}(#{1,6}(\s|$)|\||>|```|::|##\[)/.test(l)),
  );
  expect(bad).toEqual([]);
  for (const [open, close] of [
    ['<table>', '</table>'],
    ['<details>', '</details>'],
  ]) {
    expect(count(summary, open)).toBe(count(summary, close));
  }
}

/** The summary's shape: each line's kind, numbers masked (sizes and free disk differ between runs). */
function skeleton(summary: string): string[] {
  return summary.split('\n').map((l) => {
    if (l.startsWith('<tr>')) return `<tr> with ${l.split('<td>').length - 1} cells`;
    if (/^#{1,6} /.test(l)) return l.replace(/\d+/g, 'N');
    if (l.startsWith('- ')) return '- item';
    if (l.startsWith('<') || l.startsWith('>')) return l.replace(/[^<>/a-z]/g, '').slice(0, 20);
    return l === '' ? '' : 'text';
  });
}

// --- tests ------------------------------------------------------------------------------------------

let daemon: PrivateDaemon;

async function runWith(s: Strings, inputs: Record<string, string>, env: Record<string, string> = {}) {
  await clearDaemon(daemon.docker);
  await loadImages(daemon.docker, fleet(s));
  return runAction({ host: daemon.host, inputs: { protect: protect(s), ...inputs }, env });
}

describeDocker('hostile strings in labels and inputs', () => {
  beforeAll(async () => {
    daemon = (await startDaemon('hostile'))!;
  }, 60_000);
  afterAll(async () => daemon?.stop(), 60_000);

  it.each([
    ['prune', { mode: 'prune', images: 'unused', 'keep-recent': '0' }, {}],
    [
      'report on a pull request',
      { mode: 'report', images: 'unused', 'keep-recent': '0' },
      { GITHUB_EVENT_NAME: 'pull_request' },
    ],
  ] as [string, Record<string, string>, Record<string, string>][])(
    '%s: labels and protect entries change neither the summary structure nor the log',
    async (_name, inputs, env) => {
      const plain = await runWith(PLAIN, inputs, env);
      const hostile = await runWith(HOSTILE, inputs, env);
      expect(plain.code).toBe(0);
      expect(hostile.code).toBe(0);
      // The same decisions either way.
      const decisions = (run: ActionRun) =>
        (run.report.images as { tags: string[]; state: string; reason: string }[])
          // Podman names a local image `localhost/NAME`.
          .map((i) => `${i.tags.map((t) => t.replace(/^localhost\//, '')).join(',')} ${i.state} ${i.reason}`)
          .sort();
      const gone = inputs.mode === 'prune' ? 'removed' : 'would-remove';
      expect(decisions(plain)).toEqual(
        [
          'hostile/app:1 kept protected',
          'hostile/app:2 kept protected',
          `hostile/app:3 ${gone} remove`,
          ` ${gone} remove`,
          `hostile/app:5 ${gone} remove`,
        ].sort(),
      );
      expect(decisions(hostile)).toEqual(decisions(plain));
      expect(hostile.outputs['removed-count']).toBe('3');

      expectSummarySafe(hostile.summary);
      expect(skeleton(hostile.summary)).toEqual(skeleton(plain.summary));
      expectLogSafe(hostile);
      // The entries that matched nothing are warned about, defused.
      expect(
        hostile.stdout.split('\n').filter((l) => l.startsWith('::warning')).length,
      ).toBeGreaterThanOrEqual(HOSTILE.unmatched.length);
    },
    120_000,
  );

  it.each([
    ['protect', `hostile/app:1\n::error::${MARK}-invalid`],
    ['older-than', `1d\n::error::${MARK}-older`],
    ['docker-host', `unix:///tmp/sdp-hostile-nowhere.sock\n::error::${MARK}-host`],
    ['critical-containers', `ok\n::set-output name=removed-count::999 ${MARK}`],
    ['critical-containers', HOSTILE_CONTAINERS.join('\n')],
    ['gate-timeout', `5s\n::error::${MARK}-gate-timeout`],
  ])(
    'a bad %s carrying a workflow command fails without injecting it (case %#)',
    async (input, value) => {
      await clearDaemon(daemon.docker);
      await loadImages(daemon.docker, fleet(PLAIN));
      const run = await runAction({
        host: daemon.host,
        inputs: { mode: 'prune', images: 'unused', 'keep-recent': '0', [input]: value },
        timeoutMs: 60_000,
      });
      expect(run.code).toBe(1);
      expect(run.stdout.split('\n').some((l) => l.startsWith('::error::'))).toBe(true);
      expect(run.outputs['removed-count'] ?? '0').toBe('0');
      expectLogSafe(run);
    },
    90_000,
  );
});
