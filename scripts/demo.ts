// The action's main job on this machine: a report (mode `report`: nothing is deleted) of the local Docker
// daemon, run as the runner runs it, with the job summary printed to the terminal as text.
//   npm run demo               the daemon at DOCKER_HOST, else /var/run/docker.sock (started if not running)
//   npm run demo -- --sample   a private throw-away daemon filled with a sample fleet
//   npm run demo -- --inputs 'images=unused,keep-recent=1'   other inputs (report mode is kept)
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { request } from 'node:http';
import { runAction } from '../__tests__/support/action';
import { findDockerd, startDaemon } from '../__tests__/support/daemon';
import { loadFleet, sampleFleet } from '../__tests__/support/fleet';

const DEFAULT_SOCKET = '/var/run/docker.sock';

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false)).on('timeout', () => req.destroy());
    req.end();
  });
}

/** The job summary's HTML tables as terminal text. */
function asText(html: string): string {
  const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"' };
  return html
    .replace(/\n?<tr>/g, '\n  ')
    .replace(/<\/t[dh]><t[dh]>/g, ' | ')
    .replace(/<br>/g, ', ')
    .replace(/<summary>(.*?)<\/summary>/g, '### $1')
    .replace(/<[^>]+>/g, '')
    .replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
    .replace(/&(\w+);/g, (m, name) => entities[name] ?? m)
    .replace(/\n{3,}/g, '\n\n');
}

async function localHost(): Promise<{ host: string; stop?: () => Promise<void> }> {
  const env = process.env.DOCKER_HOST;
  if (env) return { host: env };
  if (await ping(DEFAULT_SOCKET)) return { host: `unix://${DEFAULT_SOCKET}` };
  const dockerd = findDockerd();
  if (!dockerd)
    throw new Error('No Docker daemon answers at /var/run/docker.sock and dockerd is not installed.');
  // The local daemon is installed but not running: start it for this report and stop it afterwards.
  // No bridge or iptables: a report needs neither, and sandboxes often forbid them.
  console.log(`Starting the local Docker daemon (${dockerd}) for this report...`);
  const child = spawn(dockerd, ['--bridge=none', '--iptables=false', '--ip-masq=false'], { stdio: 'ignore' });
  for (let i = 0; i < 300 && !(await ping(DEFAULT_SOCKET)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await ping(DEFAULT_SOCKET))) throw new Error('The local Docker daemon did not start; see its log.');
  const stop = () => new Promise<void>((resolve) => child.once('exit', () => resolve()).kill('SIGTERM'));
  return { host: `unix://${DEFAULT_SOCKET}`, stop };
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const inputs: Record<string, string> = {};
  const at = args.indexOf('--inputs');
  if (at >= 0) {
    for (const pair of (args[at + 1] ?? '').split(',').filter(Boolean)) {
      const eq = pair.indexOf('=');
      inputs[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  inputs.mode = 'report';

  let host: string;
  let stop: (() => unknown) | undefined;
  if (args.includes('--sample')) {
    const daemon = await startDaemon('demo');
    if (!daemon) throw new Error('A private daemon needs dockerd and root.');
    console.log(`Private daemon at ${daemon.host}; loading a sample fleet...`);
    await loadFleet(daemon.docker, sampleFleet());
    host = daemon.host;
    stop = () => daemon.stop();
  } else {
    ({ host, stop } = await localHost());
  }
  try {
    if (!existsSync('dist/index.js')) throw new Error('dist/index.js is missing: run npm run bundle');
    const run = await runAction({ host, inputs });
    process.stdout.write(run.stdout);
    process.stderr.write(run.stderr);
    console.log('\n---------------- job summary ----------------');
    console.log(asText(run.summary));
    // The run's own folder is gone once it ends: the report is kept where the demo's build lives.
    if (run.outputs['report-file']) {
      const kept = path.resolve('.build/demo/report.json');
      await writeFile(kept, JSON.stringify(run.report, null, 2) + '\n');
      console.log(`(outputs: ${JSON.stringify({ ...run.outputs, 'report-file': kept })})`);
    }
    return run.code;
  } finally {
    await stop?.();
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(error.message);
    process.exit(1);
  },
);
