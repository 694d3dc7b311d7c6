// A run that fails before its pass begins (an invalid input, no daemon at the host) still reports: the
// failure report as pure code (its shape, the inputs neutralised, secrets left out), its summary, and
// where it is written (on real files in a temporary folder) or why not; the command's exit codes and
// --json with it.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT, main } from '../src/cli';
import { DaemonUnreachableError, InputError, InventoryError } from '../src/errors';
import { INPUT_SPECS } from '../src/policy/inputs';
import { buildFailureReport, givenInputs, type EarlyFailure } from '../src/report/json-report';
import { renderFailure } from '../src/report/summary';
import { earlyFailureOf, reportEarlyFailure } from '../src/run';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const getter = (values: Record<string, string>) => (name: string) => values[name] ?? '';
const INVALID: EarlyFailure = {
  kind: 'invalid-input',
  message: 'keep-recent: "-1" is not a whole number of 0 or more',
  input: 'keep-recent',
};

describe('the failure report', () => {
  it('has the inputs as given, neutralised, and no secret', () => {
    const inputs = givenInputs(
      getter({
        mode: 'prune',
        'keep-recent': '-1\n::error::forged\u001b[2J',
        protect: 'app:*\n##[set-output name=x;]1',
        'github-token': 'ghs_secret',
      }),
    );
    expect(Object.keys(inputs)).toEqual(INPUT_SPECS.map((s) => s.name).filter((n) => n !== 'github-token'));
    expect(inputs['keep-recent']).toBe('-1 :\u200b:error:\u200b:forged\\u001b[2J');
    expect(inputs.protect).toBe('app:* #\u200b#[set-output name=x;]1');
    expect(inputs.images).toBe('');
    expect(JSON.stringify(inputs)).not.toContain('ghs_secret');
  });

  it('clips a very long value', () => {
    const inputs = givenInputs(getter({ protect: 'x'.repeat(5000) }));
    expect(inputs.protect).toBe(`${'x'.repeat(4096)}… (904 more characters)`);
  });

  it('says failed, the error and the mode; every count zero, nothing listed', () => {
    const report = buildFailureReport({
      failure: INVALID,
      inputs: givenInputs(getter({ mode: ' prune ', 'keep-recent': '-1' })),
      nowMs: NOW,
    });
    expect(report).toMatchObject({
      version: 1,
      status: 'failed',
      mode: 'prune',
      generatedAt: '2026-06-01T00:00:00.000Z',
      error: { kind: 'invalid-input', message: INVALID.message, input: 'keep-recent' },
      failures: [INVALID.message],
      warnings: [],
      gates: { before: [] },
      images: [],
      objects: [],
    });
    expect(Object.values(report.totals).every((n) => n === 0)).toBe(true);
    expect(report.totals).toHaveProperty('removed', 0);
    expect(report.totals).toHaveProperty('estimatedBytesHigh', 0);
  });

  it('has mode null when the mode input is not a mode, report when it is empty', () => {
    const of = (mode: string) =>
      buildFailureReport({ failure: INVALID, inputs: givenInputs(getter({ mode })), nowMs: NOW }).mode;
    expect(of('bogus')).toBeNull();
    expect(of('')).toBe('report');
    expect(of('report')).toBe('report');
  });

  it('neutralises the message', () => {
    const report = buildFailureReport({
      failure: { kind: 'daemon-unreachable', message: 'no daemon\n::error::x' },
      inputs: {},
      nowMs: NOW,
    });
    expect(report.error).toEqual({
      kind: 'daemon-unreachable',
      message: 'no daemon :\u200b:error:\u200b:x',
      input: null,
    });
  });
});

describe('the failure summary', () => {
  const report = buildFailureReport({
    failure: { ...INVALID, message: 'keep-recent: "-1<b>x</b>" is not a whole number of 0 or more' },
    inputs: givenInputs(getter({ mode: 'prune', 'keep-recent': '-1<b>x</b>\n::error::y' })),
    nowMs: NOW,
  });

  it('names the error, says nothing was removed, lists the given inputs with the invalid one marked', () => {
    const md = renderFailure(report, { file: '/tmp/r.json' });
    expect(md).toContain('## safe-docker-prune: prune failed before it began');
    expect(md).toContain(
      '> **Failed:** keep-recent: &#34;-1&#60;b&#62;x&#60;/b&#62;&#34; is not a whole number',
    );
    expect(md).toContain('**Nothing was removed**: every input is checked before the daemon is touched.');
    expect(md).toContain('<b>keep-recent</b> (invalid)');
    expect(md).toContain('<td>mode</td><td><code>prune</code></td>');
    // Empty inputs are left out.
    expect(md).not.toContain('<td>images</td>');
    expect(md).not.toContain('<b>x</b>');
    expect(md).not.toContain('::error');
    expect(md).toContain('JSON report: <code>/tmp/r.json</code>');
  });

  it('says why there is no report file, and that no daemon answered', () => {
    const unreachable = buildFailureReport({
      failure: { kind: 'daemon-unreachable', message: 'Could not reach a Docker daemon at unix:///x.sock' },
      inputs: givenInputs(getter({ mode: 'bogus' })),
      nowMs: NOW,
    });
    const md = renderFailure(unreachable, { notWritten: 'report-file is the invalid input' });
    expect(md).toContain('## safe-docker-prune: run failed before it began');
    expect(md).toContain('**Nothing was removed**: no Docker daemon answered at the host.');
    expect(md).toContain('No JSON report was written: report-file is the invalid input.');
  });
});

describe('earlyFailureOf', () => {
  it('knows an invalid input, an unreachable daemon and a failed inventory, nothing else', () => {
    expect(earlyFailureOf(new InputError('mode', 'bogus', 'is not one of: report, prune'))).toEqual({
      kind: 'invalid-input',
      message: 'mode: "bogus" is not one of: report, prune',
      input: 'mode',
    });
    expect(earlyFailureOf(new DaemonUnreachableError('gone'))).toEqual({
      kind: 'daemon-unreachable',
      message: 'gone',
    });
    expect(earlyFailureOf(new InventoryError('no answer within 20 s'))).toEqual({
      kind: 'inventory-failed',
      message: 'no answer within 20 s',
    });
    expect(earlyFailureOf(new Error('a removal failed'))).toBeUndefined();
  });
});

describe('writing the failure report', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sdp-failreport-'));
  });
  afterEach(() => {
    chmodSync(dir, 0o700);
    rmSync(dir, { recursive: true, force: true });
  });

  it('goes to report-file, its folder made first', async () => {
    const file = join(dir, 'new', 'report.json');
    const failed = await reportEarlyFailure(INVALID, getter({ 'report-file': file, mode: 'prune' }), {});
    expect(failed.file).toBe(file);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(failed.report);
  });

  it('goes to the default report file when report-file is empty', async () => {
    const failed = await reportEarlyFailure(INVALID, getter({}), { RUNNER_TEMP: dir });
    expect(failed.file).toBe(join(dir, 'safe-docker-prune-report.json'));
    expect(existsSync(failed.file!)).toBe(true);
  });

  it('replaces a symlink planted at the name, never writing through it', async () => {
    const target = join(dir, 'victim');
    writeFileSync(target, 'keep me');
    const file = join(dir, 'report.json');
    symlinkSync(target, file);
    const failed = await reportEarlyFailure(INVALID, getter({ 'report-file': file }), {});
    expect(failed.file).toBe(file);
    expect(readFileSync(target, 'utf8')).toBe('keep me');
    expect(JSON.parse(readFileSync(file, 'utf8')).status).toBe('failed');
  });

  it('writes nothing when report-file is the invalid input, or where refused, and says why', async () => {
    const file = join(dir, 'report.json');
    const own = await reportEarlyFailure(
      { kind: 'invalid-input', message: 'report-file: bad', input: 'report-file' },
      getter({ 'report-file': file }),
      {},
    );
    expect(own.notWritten).toBe('report-file is the invalid input');
    const refused = await reportEarlyFailure(INVALID, getter({ 'report-file': file }), {}, async () => 'no');
    expect(refused.notWritten).toBe('no');
    expect(existsSync(file)).toBe(false);
  });

  it('says, and does not throw, when the file cannot be written', async () => {
    const file = join(dir, 'plain-file', 'report.json');
    writeFileSync(join(dir, 'plain-file'), '');
    const failed = await reportEarlyFailure(INVALID, getter({ 'report-file': file }), {});
    expect(failed.file).toBeUndefined();
    expect(failed.notWritten).toMatch(/could not be written: .*(EEXIST|ENOTDIR)/);
  });
});

describe('the command on failures before the pass', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sdp-failreport-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const run = async (argv: string[], env: Record<string, string> = {}) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(argv, {
      out: (t) => out.push(t),
      err: (t) => err.push(t),
      env: { XDG_RUNTIME_DIR: dir, ...env },
    });
    return { code, out: out.join(''), err: err.join('') };
  };

  it('an invalid value: exit 2, the report written and printed with --json', async () => {
    const file = join(dir, 'report.json');
    const r = await run(['--keep-recent', '-1', '--report-file', file, '--json']);
    expect(r.code).toBe(EXIT.usage);
    const report = JSON.parse(readFileSync(file, 'utf8'));
    expect(report.error.input).toBe('keep-recent');
    expect(report.inputs['keep-recent']).toBe('-1');
    expect(JSON.parse(r.out)).toEqual(report);
  });

  it('without --json stdout stays empty; the default report file is the private folder', async () => {
    const r = await run(['--mode', 'bogus']);
    expect(r.code).toBe(EXIT.usage);
    expect(r.out).toBe('');
    const report = JSON.parse(readFileSync(join(dir, 'safe-docker-prune', 'report.json'), 'utf8'));
    expect(report.mode).toBeNull();
    expect(report.inputs.mode).toBe('bogus');
  });

  it('no daemon at the host: exit 3, the report says so', async () => {
    const file = join(dir, 'report.json');
    const host = `unix://${dir}/nothing.sock`;
    const r = await run(['--docker-host', host, '--report-file', file]);
    expect(r.code).toBe(EXIT.unreachable);
    const report = JSON.parse(readFileSync(file, 'utf8'));
    expect(report.error.kind).toBe('daemon-unreachable');
    expect(report.error.message).toContain(host);
  });

  it('a usage error writes no report', async () => {
    const r = await run(['--frobnicate', '--json']);
    expect(r.code).toBe(EXIT.usage);
    expect(r.out).toBe('');
    expect(existsSync(join(dir, 'safe-docker-prune'))).toBe(false);
  });

  it('a report folder that is not private: exit 2, no file, and it says so', async () => {
    mkdirSync(join(dir, 'safe-docker-prune'), { mode: 0o777 });
    chmodSync(join(dir, 'safe-docker-prune'), 0o777);
    const r = await run(['--docker-host', `unix://${dir}/nothing.sock`, '--json']);
    expect(r.code).toBe(EXIT.usage);
    expect(r.err).toContain('no JSON report was written: report-file is the invalid input');
    expect(JSON.parse(r.out).error.input).toBe('report-file');
    expect(existsSync(join(dir, 'safe-docker-prune', 'report.json'))).toBe(false);
  });
});
