// Runs the bundled action the way the GitHub runner does: `node dist/index.js` with inputs as INPUT_*
// variables (defaults from action.yml), and files for outputs and the job summary.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { accountNode, accountScript, asAccount, type RunnerAccount } from './account';
import { envForHost } from './daemon';

export interface ActionRun {
  code: number;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  /** The job summary the run wrote ('' if none). */
  summary: string;
  /** The parsed JSON report named by the `report-file` output, if there is one. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  report: any;
  /** Wall-clock time from spawn to exit. */
  durationMs: number;
  /** The owner (uid) of the report file, when there is one. */
  reportUid?: number;
}

/** The repository root: the nearest folder up from here with action.yml (works from .build/ bundles too). */
export function repoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'action.yml'))) return dir;
    if (path.dirname(dir) === dir) return process.cwd();
  }
}

export async function runAction(opts: {
  /**
   * `docker-host` input, e.g. a private daemon's `unix:///…/docker.sock`. For a daemon started by
   * startDaemon, the variables its clients need (TLS) are added to the environment.
   */
  host: string;
  /** Action inputs by their action.yml names (`older-than`), overriding action.yml defaults. */
  inputs: Record<string, string>;
  env?: Record<string, string>;
  /** Kills the run after this long (default 5 min). */
  timeoutMs?: number;
  /**
   * Runs node as this unprivileged account (support/account.ts), as GitHub's runners do: its HOME, and
   * RUNNER_TEMP and the output files owned by it. `host` must then be one it can reach (accountSocket).
   */
  account?: RunnerAccount;
}): Promise<ActionRun> {
  const root = repoRoot();
  const temp = await mkdtemp(path.join(tmpdir(), 'sdp-run-'));
  const account = opts.account;
  try {
    const outputFile = path.join(temp, 'github_output');
    const summaryFile = path.join(temp, 'step_summary');
    await writeFile(outputFile, '');
    await writeFile(summaryFile, '');
    if (account) {
      for (const file of [temp, outputFile, summaryFile]) await chown(file, account.uid, account.gid);
    }
    // A clean environment: nothing of the caller's (DOCKER_HOST above all) leaks into the run.
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: account?.home ?? process.env.HOME ?? temp,
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      RUNNER_OS: 'Linux',
      RUNNER_TEMP: temp,
      // The usage history (state-dir's default) stays inside this run unless a test names a state-dir.
      RUNNER_TOOL_CACHE: temp,
      GITHUB_OUTPUT: outputFile,
      GITHUB_STEP_SUMMARY: summaryFile,
      GITHUB_EVENT_NAME: 'push',
    };
    // The runner passes every declared input, with its default unless the workflow sets it; the name
    // is upper-cased with dashes kept (`INPUT_OLDER-THAN`).
    // Test fleets are loaded moments before the run, so the grace periods (min-age, runner-images-min-age)
    // would keep every image: tests run with them off, as Docker's own prune does, unless they are about
    // the grace period and set them.
    const inputs = {
      ...actionDefaults(root),
      'min-age': '0',
      'runner-images-min-age': '0',
      'docker-host': opts.host,
      ...opts.inputs,
    };
    for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value;
    Object.assign(env, envForHost(opts.host), opts.env);

    const started = performance.now();
    // SDP_ACTION runs another build of the action (default: the committed bundle).
    const script = path.resolve(root, process.env.SDP_ACTION ?? 'dist/index.js');
    const { code, stdout, stderr } = await spawnNode(script, env, root, opts.timeoutMs, account);
    const durationMs = Math.round(performance.now() - started);
    recordRun(`action ${opts.inputs.mode ?? 'report'}`, { code, stdout, stderr, durationMs });

    const outputs = parseOutputs(await readFile(outputFile, 'utf8'));
    const summary = await readFile(summaryFile, 'utf8');
    const reportFile = outputs['report-file'];
    const report =
      reportFile && existsSync(reportFile) ? JSON.parse(await readFile(reportFile, 'utf8')) : undefined;
    const reportUid = report ? (await stat(reportFile)).uid : undefined;
    return { code, stdout, stderr, outputs, summary, report, durationMs, reportUid };
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/**
 * Keeps a run's output for the integration environment (support/environment.cjs), which prints the runs
 * of a test that fails.
 */
export function recordRun(
  what: string,
  run: { code: number; stdout: string; stderr: string; durationMs: number },
): void {
  const runs = (globalThis as { __sdpRuns?: unknown[] }).__sdpRuns;
  if (Array.isArray(runs)) runs.push({ what, ...run });
}

/**
 * Waits for a spawned process and collects its output (SIGKILL after `timeoutMs`); the run is kept under
 * `what` for a failing test's dump (recordRun). The exit code of a process ended by a signal is 128.
 */
export function collectRun(
  child: ChildProcess,
  what: string,
  timeoutMs = 120_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c) => (stdout += c));
    child.stderr?.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const durationMs = Math.round(performance.now() - started);
      recordRun(what, { code: code ?? 128, stdout, stderr, durationMs });
      resolve({ code: code ?? 128, stdout, stderr });
    });
  });
}

/**
 * Runs `node script` (SDP_NODE: another Node.js, e.g. node24, as the runner uses), as `account` when
 * given (through setpriv, with a node binary and a script it can read: copies where the originals are
 * out of its reach).
 */
export async function spawnNode(
  script: string,
  env: Record<string, string>,
  cwd: string,
  timeoutMs = 300_000,
  account?: RunnerAccount,
  args: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = await startNode(script, env, cwd, account, args);
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout,
        stderr: signal ? `${stderr}\nkilled: ${signal}` : stderr,
      });
    });
  });
}

/** Starts `node script args…` as spawnNode does, for callers that talk to it while it runs. */
export async function startNode(
  script: string,
  env: Record<string, string>,
  cwd: string,
  account?: RunnerAccount,
  args: string[] = [],
): Promise<ChildProcess> {
  const node = process.env.SDP_NODE ?? process.execPath;
  if (!account) return spawn(node, [script, ...args], { env, cwd });
  const readable = await accountScript(account, script);
  const [bin, ...argv] = asAccount(account, [await accountNode(account), readable, ...args]);
  return spawn(bin, argv, { env, cwd });
}

/**
 * GITHUB_OUTPUT as @actions/core writes it: `name<<DELIMITER\nvalue\nDELIMITER` blocks, or plain
 * `name=value` lines.
 */
export function parseOutputs(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const heredoc = /^([^=]+?)<<(.+)$/.exec(lines[i]);
    if (heredoc) {
      const end = lines.indexOf(heredoc[2], i + 1);
      if (end < 0) throw new Error(`GITHUB_OUTPUT: no closing ${heredoc[2]} for ${heredoc[1]}`);
      outputs[heredoc[1]] = lines.slice(i + 1, end).join('\n');
      i = end;
    } else if (lines[i].includes('=')) {
      const at = lines[i].indexOf('=');
      outputs[lines[i].slice(0, at)] = lines[i].slice(at + 1);
    }
  }
  return outputs;
}

/**
 * Input defaults from action.yml. A small reader for the one shape that file has (`inputs:` → `  name:` →
 * `    default: value`, quoted or plain): it keeps the test support free of a YAML dependency.
 */
export function actionDefaults(root = repoRoot()): Record<string, string> {
  const file = path.join(root, 'action.yml');
  if (!existsSync(file)) return {};
  const defaults: Record<string, string> = {};
  let section = '';
  let input = '';
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const top = /^(\S[^:]*):/.exec(line);
    if (top) section = top[1];
    const name = /^ {2}([\w-]+):\s*$/.exec(line);
    if (name) input = name[1];
    const value = /^ {4}default:\s*(.*)$/.exec(line);
    // The runner evaluates expression defaults (`${{ github.token }}`); these runs have no token: ''.
    if (section === 'inputs' && input && value) {
      const text = unquote(value[1].trim());
      defaults[input] = /^\$\{\{.*\}\}$/.test(text) ? '' : text;
    }
  }
  return defaults;
}

function unquote(value: string): string {
  if (value.startsWith("'") && value.endsWith("'")) return value.slice(1, -1).replace(/''/g, "'");
  if (value.startsWith('"') && value.endsWith('"')) return JSON.parse(value);
  return value;
}
