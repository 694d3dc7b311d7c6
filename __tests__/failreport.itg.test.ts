// Failures before the run begins write their report too (README: "the summary and JSON report are written
// first"): an invalid input, against a private daemon holding images a valid run would remove, and a
// docker-host where no daemon answers (a socket path that does not exist, a socket that is not a daemon).
// The bundled action (dist/index.js) and command (dist/cli.js), as real processes: the exit code stays the
// documented one, the job summary names the error, the JSON report holds the error and the inputs as given
// (neutralised), and nothing is removed.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { collectRun, repoRoot, runAction, type ActionRun } from './support/action';
import {
  currentEngine,
  describeDocker,
  ENGINES,
  startDaemon,
  type EngineName,
  type PrivateDaemon,
} from './support/daemon';
import { imageState, loadImages, type ImageSpec } from './support/fleet';
import { startGarbageSocket } from './support/proxy';

const CLI = path.join(repoRoot(), 'dist', 'cli.js');
/** What a valid run with these inputs would do: remove every unused image. */
const PRUNE = { mode: 'prune', images: 'unused', 'keep-recent': '0' };

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The command with a clean environment (no DOCKER_HOST of the caller's) plus `env`. */
function runCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  const child = spawn(process.env.SDP_NODE ?? process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    cwd: repoRoot(),
  });
  return collectRun(child, `command ${args.join(' ')}`, 60_000);
}

/** The lines the runner reads as error annotations. */
const errorLines = (run: ActionRun) => run.stdout.split('\n').filter((l) => l.startsWith('::error::'));

/** The contract of a failure report, action or command: the error, the inputs, nothing done. */
function expectFailureReport(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  report: any,
  kind: 'invalid-input' | 'daemon-unreachable',
  message: string,
  inputs: Record<string, string>,
): void {
  expect(report).toBeDefined();
  expect(report.status).toBe('failed');
  expect(report.error.kind).toBe(kind);
  expect(report.error.message).toContain(message);
  expect(report.failures).toEqual([report.error.message]);
  expect(report.inputs).toMatchObject(inputs);
  expect(report.inputs).not.toHaveProperty('github-token');
  expect(report.totals.removed).toBe(0);
  expect(report.totals.reclaimedBytes).toBe(0);
  expect(report.images).toEqual([]);
  expect(report.objects).toEqual([]);
}

describeDocker('invalid inputs against a real daemon: summary and report, nothing removed', () => {
  let daemon: PrivateDaemon;
  let temp: string;
  beforeAll(async () => {
    temp = await mkdtemp(path.join(tmpdir(), 'sdp-failreport-'));
    daemon = (await startDaemon('failreport'))!;
    const images: ImageSpec[] = Array.from({ length: 4 }, (_, i) => ({
      tags: i === 3 ? [] : [`failreport/app:v${i}`],
      name: `failreport-${i}`,
      layers: [{ key: `failreport-${i}`, bytes: 512 + i }],
      created: '2024-01-01T00:00:00Z',
    }));
    await loadImages(daemon.docker, images);
  }, 120_000);
  afterAll(async () => {
    await daemon?.stop();
    if (temp) await rm(temp, { recursive: true, force: true });
  }, 60_000);

  for (const [input, value, message, mode] of [
    ['mode', 'bogus', 'mode: "bogus" is not one of: report, prune', null],
    ['keep-recent', '-1', 'keep-recent: "-1" is not a whole number', 'prune'],
  ] as const) {
    it(`the action with ${input}: ${value} exits 1, writes the summary and the report`, async () => {
      const before = await imageState(daemon.docker);
      const run = await runAction({ host: daemon.host, inputs: { ...PRUNE, [input]: value } });
      expect(run.code).toBe(1);
      expect(errorLines(run)).toEqual([expect.stringContaining(message)]);
      // The summary names the error (its quotes entity-escaped) and says nothing was removed.
      expect(run.summary).toContain(message.replace(/"/g, '&#34;'));
      expect(run.summary).toMatch(/nothing was removed/i);
      expect(run.outputs['report-file']).toBeTruthy();
      expectFailureReport(run.report, 'invalid-input', message, {
        ...PRUNE,
        [input]: value,
        'docker-host': daemon.host,
      });
      expect(run.report.error.input).toBe(input);
      expect(run.report.mode).toBe(mode);
      expect(await imageState(daemon.docker)).toEqual(before);
    }, 60_000);
  }

  it('a hostile invalid value is neutralised in the log, the summary and the report', async () => {
    const value = '-1\n::error::forged\u001b[2J';
    const run = await runAction({ host: daemon.host, inputs: { ...PRUNE, 'keep-recent': value } });
    expect(run.code).toBe(1);
    expect(run.stdout).not.toMatch(/^::error::forged/m);
    expect(run.summary).not.toContain('::error::forged');
    expect(run.summary).not.toContain('\u001b');
    expect(run.report.inputs['keep-recent']).toBe('-1 :\u200b:error:\u200b:forged\\u001b[2J');
    expect(run.report.error.message).not.toContain('\n');
    expect(run.report.error.message).not.toContain('\u001b');
    expect(run.report.error.message).not.toContain('::');
  }, 60_000);

  it('the command with an invalid value exits 2, writes the report and prints it with --json', async () => {
    const before = await imageState(daemon.docker);
    const file = path.join(temp, 'bad-input.json');
    const run = await runCli(
      ['--docker-host', daemon.host, '--mode', 'prune', '--images', 'unused', '--keep-recent', '-1'],
      { ...daemon.env, HOME: temp, SAFE_DOCKER_PRUNE_REPORT_FILE: file, SAFE_DOCKER_PRUNE_JSON: 'true' },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('keep-recent: "-1"');
    const report = JSON.parse(await readFile(file, 'utf8'));
    expectFailureReport(report, 'invalid-input', 'keep-recent: "-1"', {
      mode: 'prune',
      images: 'unused',
      'keep-recent': '-1',
      'report-file': file,
    });
    expect(report.mode).toBe('prune');
    expect(JSON.parse(run.stdout)).toEqual(report);
    expect(await imageState(daemon.docker)).toEqual(before);
  }, 60_000);
});

/** The engine these runs need none of: they run once, with the first engine. */
const FIRST_ENGINE = Object.keys(ENGINES)[0] as EngineName;
const describeOnce = currentEngine() === FIRST_ENGINE ? describe : describe.skip;
const onceName = (name: string) =>
  currentEngine() === FIRST_ENGINE
    ? name
    : `${name} [skipped on ${currentEngine()}: needs no daemon, runs once on ${FIRST_ENGINE}]`;

describeOnce(onceName('no daemon at docker-host: summary and report'), () => {
  let temp: string;
  beforeAll(async () => {
    temp = await mkdtemp(path.join(tmpdir(), 'sdp-failreport-'));
  });
  afterAll(async () => {
    if (temp) await rm(temp, { recursive: true, force: true });
  });

  it('the action, a socket path that does not exist: exit 1, the summary and report name the host', async () => {
    const host = `unix://${temp}/nothing.sock`;
    const run = await runAction({ host, inputs: PRUNE, timeoutMs: 60_000 });
    expect(run.code).toBe(1);
    expect(errorLines(run)).toEqual([expect.stringContaining(`Could not reach a Docker daemon at ${host}`)]);
    expect(run.summary).toContain(`${temp}/nothing.sock`);
    expect(run.summary).toMatch(/nothing was removed/i);
    expectFailureReport(run.report, 'daemon-unreachable', `Could not reach a Docker daemon at ${host}`, {
      ...PRUNE,
      'docker-host': host,
    });
    expect(run.report.mode).toBe('prune');
    expect(run.report.error.input).toBeNull();
  });

  it('the action, a socket that is not a Docker daemon: exit 1, the summary and report say so', async () => {
    const server = await startGarbageSocket();
    try {
      const run = await runAction({ host: server.host, inputs: PRUNE, timeoutMs: 60_000 });
      expect(run.code).toBe(1);
      expect(run.summary).toContain(server.socket);
      expect(run.summary).toMatch(/not a Docker daemon/i);
      expectFailureReport(run.report, 'daemon-unreachable', 'not a Docker daemon', {
        'docker-host': server.host,
      });
    } finally {
      await server.close();
    }
  });

  it('the command: exit 3, the report written and printed with --json', async () => {
    const host = `unix://${temp}/nothing.sock`;
    const file = path.join(temp, 'unreachable.json');
    const run = await runCli(['--docker-host', host, '--json', '--report-file', file], { HOME: temp });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`${temp}/nothing.sock`);
    const report = JSON.parse(readFileSync(file, 'utf8'));
    expectFailureReport(report, 'daemon-unreachable', `Could not reach a Docker daemon at ${host}`, {
      'docker-host': host,
    });
    expect(report.mode).toBe('report');
    expect(JSON.parse(run.stdout)).toEqual(report);
  });

  it('the command whose report folder is refused: exit 2, no file, and it says so', async () => {
    // The default report folder, writable by other users: refused, so no report file is written.
    const runtime = path.join(temp, 'runtime');
    const folder = path.join(runtime, 'safe-docker-prune');
    await mkdir(folder, { recursive: true });
    await chmod(folder, 0o777);
    const env = { HOME: temp, XDG_RUNTIME_DIR: runtime };
    const host = `unix://${temp}/nothing.sock`;
    // report-file is the invalid input itself.
    const own = await runCli(['--docker-host', host, '--json'], env);
    expect(own.code).toBe(2);
    expect(own.stderr).toContain('report-file:');
    expect(own.stderr).toMatch(/no JSON report was written: report-file is the invalid input/);
    // stdout is no file: the failure report still goes there with --json.
    expect(JSON.parse(own.stdout).error.input).toBe('report-file');
    // Another input is invalid, and the folder is refused all the same.
    const other = await runCli(['--docker-host', host, '--keep-recent', '-1', '--json'], env);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('keep-recent: "-1"');
    expect(other.stderr).toMatch(/no JSON report was written: .*not private/);
    expect(JSON.parse(other.stdout).error.input).toBe('keep-recent');
    expect(existsSync(path.join(folder, 'report.json'))).toBe(false);
  });
});
