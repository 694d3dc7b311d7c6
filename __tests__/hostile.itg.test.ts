// Hostile strings: image labels, protect entries, critical container names and other inputs carrying
// Markdown, HTML, backticks, `|`, newlines and workflow-command sequences (`::error::`, `::set-output`,
// `##[error]`). They must not change the job summary's structure (compared line kind by line kind with a
// run on harmless strings of the same shape) and must not put a workflow command into the log.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { collectRun, repoRoot, runAction, type ActionRun } from './support/action';
import { describeDocker, itWith, startDaemon, type PrivateDaemon } from './support/daemon';
import { busyboxImage, clearDaemon, loadImages, type ImageSpec } from './support/fleet';
import { startFaultProxy } from './support/proxy';

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

// --- names from the daemon: networks, labels, error messages -------------------------------------

// The runner honours `##[cmd]` anywhere in a line (and `::cmd::` mid-line on some versions); a terminal
// acts on ESC sequences and C1 controls; bidi controls reorder what a reader sees.
const ESC_RED = '\u001b[31m';
const OSC_TITLE = '\u001b]0;title\u0007';
const BIDI = '\u202e\u2066\u200f\u061c';
/** A name of the daemon's carrying each form; network names have no length or character limit. */
const HOSTILE_NETWORKS = [
  `x ##[set-output name=removed-count;]999 ${MARK}-net`,
  `::warning::forged-${MARK}`,
  `y ##[stop-commands]${MARK}token ##[error]${MARK}-stopped`,
  `esc${ESC_RED}red${OSC_TITLE}${BIDI}gnp.exe-${MARK}`,
];
/** A label value of images and a network, surfaced in the log by the protect entry that names it. */
const HOSTILE_LABEL = `##[error]pwned-${MARK} ${ESC_RED}red ${OSC_TITLE} ${BIDI}rtl ::warning::forged-label`;
const TEST_LABEL = 'sdp.hostile-test';

/** Every line of both streams: no `##[`, no `::` past the action's own command, no ESC, C1 or bidi. */
function expectNoInjection(stdout: string, stderr: string): void {
  const offending: string[] = [];
  for (const [stream, text] of [
    ['stdout', stdout],
    ['stderr', stderr],
  ]) {
    for (const line of text.split('\n')) {
      const t = line.trimStart();
      const own = OWN_COMMAND.exec(t);
      const rest = own ? t.slice(own[0].length) : t;
      if (
        line.includes('##[') ||
        rest.includes('::') ||
        // eslint-disable-next-line no-control-regex
        /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]/.test(
          line,
        )
      ) {
        offending.push(`${stream}: ${JSON.stringify(line)}`);
      }
    }
  }
  expect(offending).toEqual([]);
  // The payload did reach the log, defused.
  expect(`${stdout}${stderr}`).toContain(`${MARK}-net`);
  expect(`${stdout}${stderr}`).toContain(`pwned-${MARK}`);
}

/**
 * The outputs as the runner would end up with them: the outputs file, then every `set-output` command in
 * the log (the legacy `##[set-output name=N;]V` anywhere in a line, `::set-output name=N::V` at its start).
 */
function outputsAsTheRunnerReads(outputs: Record<string, string>, stdout: string, stderr: string) {
  const seen = { ...outputs };
  for (const line of `${stdout}\n${stderr}`.split('\n')) {
    const legacy = /##\[set-output name=([^;\]]+);?\](.*)$/.exec(line);
    const current = /^\s*::set-output name=([^:]+)::(.*)$/.exec(line);
    for (const m of [legacy, current]) if (m) seen[m[1]] = m[2];
  }
  return seen;
}

async function clearNetworks(): Promise<void> {
  const networks = await daemon.docker.listNetworks({ filters: { label: [TEST_LABEL] } });
  for (const n of networks) await daemon.docker.getNetwork(n.Id).remove();
}

/** Images (two removable, one kept by its label) and the hostile networks (one kept by its label). */
async function hostileNames(): Promise<{ images: number; networks: string[] }> {
  await clearDaemon(daemon.docker);
  await clearNetworks();
  await loadImages(daemon.docker, [
    ...[1, 2].map((n) => ({
      tags: [`names/app:${n}`],
      layers: [{ key: `names-${n}`, bytes: 1_000 + n }],
      created: new Date(NOW - (10 + n) * DAY),
      labels: { 'sdp.note': HOSTILE_LABEL.replace('pwned', `pwned${n}`) },
    })),
    {
      tags: ['names/kept:1'],
      layers: [{ key: 'names-kept', bytes: 1_500 }],
      created: new Date(NOW - 30 * DAY),
      labels: { 'sdp.note': HOSTILE_LABEL },
    },
  ]);
  for (const name of HOSTILE_NETWORKS) {
    await daemon.docker.createNetwork({ Name: name, Labels: { [TEST_LABEL]: 'x', 'sdp.note': 'y' } });
  }
  await daemon.docker.createNetwork({
    Name: `kept-net-${MARK}`,
    Labels: { [TEST_LABEL]: 'x', 'sdp.note': HOSTILE_LABEL },
  });
  const networks = (await daemon.docker.listNetworks({ filters: { label: [TEST_LABEL] } })).map(
    (n) => n.Name,
  );
  return { images: 3, networks };
}

const NAME_INPUTS = {
  mode: 'prune',
  images: 'unused',
  networks: 'unused',
  'keep-recent': '0',
  protect: `label=sdp.note=${HOSTILE_LABEL}`,
};

// Docker only: Podman 4.3 refuses such network names ("names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*");
// its labels are covered above.
describeDocker(
  'hostile names from the daemon',
  () => {
    beforeAll(async () => {
      daemon = (await startDaemon('hostile-names'))!;
    }, 60_000);
    afterAll(async () => daemon?.stop(), 60_000);

    it('the action: no command, escape or bidi control from names reaches the log; outputs are true', async () => {
      const before = await hostileNames();
      expect(before.networks.sort()).toEqual([...HOSTILE_NETWORKS, `kept-net-${MARK}`].sort());
      const run = await runAction({ host: daemon.host, inputs: NAME_INPUTS });
      expect(run.code).toBe(0);
      expectNoInjection(run.stdout, run.stderr);
      // Outputs are what was really removed, not what a name said.
      const imagesLeft = (await daemon.docker.listImages()).length;
      const networksLeft = await daemon.docker.listNetworks({ filters: { label: [TEST_LABEL] } });
      expect(networksLeft.map((n) => n.Name)).toEqual([`kept-net-${MARK}`]);
      expect(run.outputs['removed-count']).toBe(String(before.images - imagesLeft));
      expect(run.outputs['removed-count']).toBe('2');
      expect(run.outputs['removed-networks']).toBe(String(HOSTILE_NETWORKS.length));
      expect(outputsAsTheRunnerReads(run.outputs, run.stdout, run.stderr)).toEqual(run.outputs);
      // No annotation but the action's own: each names the run's business, none is the payload's.
      const annotations = run.stdout.split('\n').filter((l) => /^::(warning|error|notice)/.test(l));
      expect(annotations.filter((l) => !l.startsWith('::warning::') && !l.startsWith('::notice'))).toEqual(
        [],
      );
      expect(annotations.filter((l) => /^::warning::[^a-z]/i.test(l) || l.includes('forged'))).toEqual([]);
      // The summary carries the names, defused too.
      expect(run.summary).toContain(`${MARK}-net`);
      // eslint-disable-next-line no-control-regex
      expect(run.summary).not.toMatch(/##\[|[\u001b\u0007\u202a-\u202e\u2066-\u2069]/);
    }, 120_000);

    it('the command inside Actions: stdout and stderr carry no command, escape or bidi control', async () => {
      const args = ['--mode', 'prune', '--images', 'unused', '--networks', 'unused', '--keep-recent', '0'];
      for (const json of [false, true]) {
        await hostileNames();
        const run = await runCli([...args, ...(json ? ['--json'] : []), '--protect', NAME_INPUTS.protect]);
        expect(run.code).toBe(0);
        expectNoInjection(run.stdout, run.stderr);
        // The command sets no output; nothing in its log may set one either.
        expect(outputsAsTheRunnerReads({}, run.stdout, run.stderr)).toEqual({});
        if (json) {
          // Defused for the runner, and still the same data for a program.
          const report = JSON.parse(run.stdout);
          const names = (report.objects as { kind: string; name: string }[])
            .filter((o) => o.kind === 'network')
            .map((o) => o.name);
          expect(names).toEqual(expect.arrayContaining(HOSTILE_NETWORKS));
          const labels = (report.images as { labels: Record<string, string> }[]).map(
            (i) => i.labels['sdp.note'],
          );
          expect(labels).toContain(HOSTILE_LABEL);
        }
      }
    }, 180_000);

    itWith(
      ['unix-socket', 'run-containers', 'docker'],
      "the daemon's own error quoting a hostile name is defused",
      async () => {
        await hostileNames();
        // A running container on a network of its own, connected to the hostile network just as the
        // action deletes it: Docker answers with an error naming the network.
        await daemon.docker.createNetwork({ Name: 'names-helper', Labels: { [TEST_LABEL]: 'x' } });
        await loadImages(daemon.docker, [busyboxImage('names/busybox:1')]);
        const container = await daemon.docker.createContainer({
          name: 'names-runner',
          Image: 'names/busybox:1',
          Cmd: ['/bin/busybox', 'sleep', '3600'],
          HostConfig: { NetworkMode: 'names-helper' },
        });
        await container.start();
        const target = (await daemon.docker.listNetworks({ filters: { label: [TEST_LABEL] } })).find((n) =>
          n.Name.startsWith('x ##['),
        )!;
        const proxy = await startFaultProxy(daemon.socket);
        let connected: Promise<unknown> | undefined;
        proxy.rule = (req) => {
          if (req.method !== 'DELETE' || !req.path.includes(target.Id) || connected) return undefined;
          connected = daemon.docker.getNetwork(target.Id).connect({ Container: container.id });
          return { kind: 'delay', ms: 1_500 };
        };
        try {
          const run = await runAction({
            host: proxy.host,
            inputs: { ...NAME_INPUTS, protect: `${NAME_INPUTS.protect}\nnames/busybox` },
          });
          await connected;
          expectNoInjection(run.stdout, run.stderr);
          // The daemon did answer with the name, and the warning carries it, defused.
          const warning = run.stdout
            .split('\n')
            .find((l) => l.startsWith('::warning::') && l.includes(`${MARK}-net`));
          expect(warning).toBeDefined();
          expect(run.outputs['removed-networks']).toBe(String(HOSTILE_NETWORKS.length - 1));
          expect(outputsAsTheRunnerReads(run.outputs, run.stdout, run.stderr)).toEqual(run.outputs);
        } finally {
          await proxy.close();
          await container.remove({ force: true });
        }
      },
      120_000,
    );
  },
  ['docker'],
);

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The command (dist/cli.js) as a workflow step runs it: GITHUB_ACTIONS set, a clean environment. */
function runCli(args: string[]): Promise<CliRun> {
  const root = repoRoot();
  const child = spawn(
    process.execPath,
    [path.join(root, 'dist', 'cli.js'), ...args, '--docker-host', daemon.host],
    {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: tmpdir(),
        GITHUB_ACTIONS: 'true',
        // The fleet was loaded moments ago: grace periods off, as in runAction.
        SAFE_DOCKER_PRUNE_MIN_AGE: '0',
        SAFE_DOCKER_PRUNE_RUNNER_IMAGES_MIN_AGE: '0',
        ...daemon.env,
      },
      cwd: root,
    },
  );
  return collectRun(child, `command ${args.join(' ')}`);
}
