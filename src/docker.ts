// The one place that talks HTTP to the Docker daemon. Everything goes through dockerode's modem so the
// same code serves unix sockets, tcp (with TLS from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH) and ssh.

import http from 'node:http';
import https from 'node:https';
import Docker from 'dockerode';

export interface DockerApi {
  /** The daemon address, for messages. */
  readonly host: string;
  request<T>(method: 'GET' | 'POST' | 'DELETE', path: string, query?: Record<string, unknown>): Promise<T>;
  /** Rejects, within PING_TIMEOUT_MS, unless a Docker daemon answers `/_ping`. */
  ping(): Promise<void>;
  close(): void;
}

/** An error answered by the daemon (statusCode set) or met on the way to it. */
export interface DockerError extends Error {
  statusCode?: number;
  json?: { message?: string } | null;
  reason?: string;
}

export function statusOf(error: unknown): number | undefined {
  return (error as DockerError)?.statusCode;
}

/** The daemon's own message when it gave one, else the error's. */
export function messageOf(error: unknown): string {
  const e = error as DockerError;
  return (e?.json?.message ?? e?.message ?? String(error)).trim();
}

export const DEFAULT_HOST = 'unix:///var/run/docker.sock';
/** A reachable daemon answers `/_ping` in well under a second; a dead or silent host is given this long. */
export const PING_TIMEOUT_MS = 10_000;

/** No HTTP status: the connection failed, was reset or timed out (the daemon may be gone). */
export function isConnectionError(error: unknown): boolean {
  return statusOf(error) === undefined;
}

export function connectDocker(host: string | undefined, options: { timeoutMs: number }): DockerApi {
  // dockerode reads DOCKER_HOST (and its TLS variables) itself; setting it is how an explicit host
  // gets the same parsing as the environment variable.
  if (host) process.env.DOCKER_HOST = host;
  const resolved = host ?? process.env.DOCKER_HOST ?? DEFAULT_HOST;
  // No custom http.Agent: docker-modem formats every request's options with util.inspect (even with
  // debugging off), and an agent in them makes each call cost ~9 ms instead of ~0.2 ms. Node's global
  // agent keeps connections alive; the callers bound the concurrency.
  const docker = new Docker({ timeout: options.timeoutMs } as Docker.DockerOptions);
  const pinger = new Docker({
    timeout: Math.min(PING_TIMEOUT_MS, options.timeoutMs),
  } as Docker.DockerOptions);

  const dial = <T>(client: Docker, method: string, path: string, query?: Record<string, unknown>) =>
    new Promise<T>((resolve, reject) => {
      client.modem.dial(
        {
          path: `${path}?`,
          method,
          // A POST would also send its options as the JSON body; these endpoints take none.
          options: method === 'POST' ? { _query: query ?? {}, _body: {} } : (query ?? {}),
          statusCodes: {
            200: true,
            201: true,
            204: true,
            400: 'bad parameter',
            403: 'forbidden',
            404: 'not found',
            409: 'conflict',
            500: 'server error',
          },
        },
        (err: unknown, data: unknown) => (err ? reject(err) : resolve(data as T)),
      );
    });

  return {
    host: resolved,
    request: <T>(method: 'GET' | 'POST' | 'DELETE', path: string, query?: Record<string, unknown>) =>
      dial<T>(docker, method, path, query),
    async ping() {
      const answer = await dial<unknown>(pinger, 'GET', '/_ping');
      // Docker answers the plain text OK; anything else is some other HTTP server.
      if (String(answer).trim() !== 'OK') {
        throw new Error(`${resolved} answered /_ping with something other than Docker's "OK"`);
      }
    },
    close() {
      // Idle keep-alive sockets must not hold the process open after the run.
      http.globalAgent.destroy();
      https.globalAgent.destroy();
    },
  };
}
