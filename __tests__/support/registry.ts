// A registry of a test's own on 127.0.0.1 (Debian's docker-registry): Docker trusts loopback registries
// without TLS; Podman pushes and pulls with --tls-verify=false.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unusedPort } from './proxy';

const REGISTRY = '/usr/bin/docker-registry';

export interface Registry {
  /** `127.0.0.1:PORT`. */
  host: string;
  stop(): void;
}

/** Starts one; undefined where docker-registry is missing (an error when SDP_REQUIRE_DOCKER is set). */
export async function startRegistry(): Promise<Registry | undefined> {
  if (!existsSync(REGISTRY)) {
    if (process.env.SDP_REQUIRE_DOCKER === '1')
      throw new Error(`${REGISTRY} is missing (apt-get install docker-registry)`);
    return undefined;
  }
  const dir = mkdtempSync(join(tmpdir(), 'sdp-registry-'));
  const port = await unusedPort();
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${dir}/data`,
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(REGISTRY, ['serve', config], { stdio: 'ignore' });
  const stop = () => {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/v2/`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { host: `127.0.0.1:${port}`, stop };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  stop();
  throw new Error('the registry did not answer within 10 s');
}
