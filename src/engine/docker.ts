// The one place that talks HTTP to the Docker daemon. Everything goes through docker-modem (dockerode's
// transport) so the same code serves unix sockets, tcp (with TLS from DOCKER_TLS_VERIFY /
// DOCKER_CERT_PATH) and ssh. The modem alone, not dockerode: dockerode loads its gRPC session code
// (grpc-js, protobufjs) at startup, which no request here uses and which took most of a cold start.

import http from 'node:http';
import https from 'node:https';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import Modem from 'docker-modem';
import { InputError, messageOf } from '../errors';

export interface DockerApi {
  /** The daemon address, for messages. */
  readonly host: string;
  request<T>(method: 'GET' | 'POST' | 'DELETE', path: string, query?: Record<string, unknown>): Promise<T>;
  /** Rejects, within PING_TIMEOUT_MS, unless a Docker daemon answers `/_ping` (on a new connection). */
  ping(): Promise<void>;
  /**
   * Whether the daemon still serves requests, asked on new connections (a daemon shutting down keeps
   * answering on connections it already has, and may answer `/_ping` there, while it refuses new ones):
   * `/_ping`, then a read that goes through its image store. Rejects, saying why, within 2 × PING_TIMEOUT_MS.
   */
  probe(): Promise<void>;
  /** Milliseconds left before the whole run's time limit (Infinity without one). */
  timeLeft(): number;
  close(): void;
}

/** An error answered by the daemon (statusCode set) or met on the way to it. */
export interface DockerError extends Error {
  statusCode?: number;
  /** The request the daemon answered with this error, e.g. `GET /system/df`. */
  request?: string;
  json?: { message?: string } | null;
  reason?: string;
}

/** The daemon's message, with the request it answered when known: `GET /system/df: snapshot … not found`. */
export function describeError(error: unknown): string {
  const request = (error as DockerError)?.request;
  return request ? `${request}: ${messageOf(error)}` : messageOf(error);
}

export function statusOf(error: unknown): number | undefined {
  return (error as DockerError)?.statusCode;
}

export const DEFAULT_HOST = 'unix:///var/run/docker.sock';
/** A reachable daemon answers `/_ping` in well under a second; a dead or silent host is given this long. */
export const PING_TIMEOUT_MS = 10_000;

/** No HTTP status: the connection failed, was reset or timed out (the daemon may be gone). */
export function isConnectionError(error: unknown): boolean {
  return statusOf(error) === undefined;
}

/** The code of the error every request fails with once the whole run's time limit has passed. */
export const RUN_TIME_LIMIT = 'SDP_RUN_TIME_LIMIT';

export function isRunTimeLimit(error: unknown): boolean {
  return (error as { code?: string })?.code === RUN_TIME_LIMIT;
}

/**
 * Why an answer to `/_ping` shows that the host is not a Docker daemon, or undefined when the failure is
 * one of reaching it (refused, reset, timed out) or a server error.
 */
function notDocker(error: unknown): string | undefined {
  const code = String((error as { code?: string })?.code ?? '');
  // Node's HTTP parser: the bytes that came back are not an HTTP response.
  if (code.startsWith('HPE_')) return `it answered with bytes that are not HTTP (${messageOf(error)})`;
  // A 5xx may be a daemon (or a proxy in front of one) in trouble; any other status is not Docker's.
  const status = statusOf(error);
  // Docker's TLS port answering plain HTTP: a daemon, reached the wrong way (see tlsAdvice).
  if (/HTTP request to an HTTPS server/i.test(messageOf(error))) return undefined;
  if (status !== undefined && status < 500)
    return `it answered /_ping with HTTP ${status}, not Docker's 200 "OK"`;
  return undefined;
}

/**
 * TLS the way the docker CLI reads it: any non-empty DOCKER_TLS_VERIFY turns it on, and DOCKER_CERT_PATH
 * (default ~/.docker) holds ca.pem, cert.pem and key.pem. dockerode only knows DOCKER_TLS_VERIFY=1 and
 * reads the files while connecting; a missing one is an error here that says which and where.
 */
export function prepareTls(host: string, env: NodeJS.ProcessEnv): void {
  if (!host.startsWith('tcp://')) return;
  const verify = (env.DOCKER_TLS_VERIFY ?? '') !== '';
  if (verify) env.DOCKER_TLS_VERIFY = '1';
  if (verify && !env.DOCKER_CERT_PATH) env.DOCKER_CERT_PATH = join(homedir(), '.docker');
  if (!env.DOCKER_CERT_PATH) return;
  const missing = ['ca.pem', 'cert.pem', 'key.pem'].filter(
    (file) => !existsSync(join(env.DOCKER_CERT_PATH!, file)),
  );
  if (missing.length > 0) {
    throw new InputError(
      'DOCKER_CERT_PATH',
      env.DOCKER_CERT_PATH,
      `lacks ${missing.join(', ')}: TLS to ${host} needs the CA (ca.pem) and this client's certificate and ` +
        'key (cert.pem, key.pem) there, as the docker CLI reads them',
    );
  }
}

/** What to check when a TLS connection to `host` failed, or undefined when the failure is not TLS's. */
export function tlsAdvice(error: unknown, host: string): string | undefined {
  const code = String((error as { code?: string })?.code ?? '');
  const message = messageOf(error);
  const certPath = process.env.DOCKER_CERT_PATH ?? '~/.docker';
  if (/HTTP request to an HTTPS server/i.test(message)) {
    return `${host} speaks TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the folder with ca.pem, cert.pem and key.pem`;
  }
  if (/wrong version number|packet length too long|WRONG_VERSION_NUMBER/i.test(`${code} ${message}`)) {
    return `${host} does not speak TLS: unset DOCKER_TLS_VERIFY or use the daemon's TLS port`;
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code) || /certificate/i.test(message)) {
    if (/ALTNAME/.test(code) || /altnames|does not match/i.test(message)) {
      return `the daemon's certificate does not name ${host}: connect by a name or address its certificate lists`;
    }
    if (/alert|bad certificate|certificate required|unknown ca/i.test(message)) {
      return `the daemon refused this client's certificate: check that ${certPath}/cert.pem and key.pem are signed by the CA the daemon trusts (its --tlscacert)`;
    }
    return `the daemon's certificate could not be verified: check that ${certPath}/ca.pem is the CA that signed it`;
  }
  return undefined;
}

export interface ConnectOptions {
  timeoutMs: number;
  /** Limit for the whole run from now: afterwards every request, even one in flight, fails at once. */
  runTimeoutMs?: number;
  /** How the limit is described in messages, e.g. "10 × api-timeout". */
  runLimitRule?: string;
}

export function connectDocker(host: string | undefined, options: ConnectOptions): DockerApi {
  const resolved = resolveHost(host);
  // No custom http.Agent: docker-modem formats every request's options with util.inspect (even with
  // debugging off), and an agent in them makes each call cost ~9 ms instead of ~0.2 ms. Node's global
  // agent keeps connections alive; the callers bound the concurrency.
  const modem = new Modem({ timeout: options.timeoutMs });
  const pingTimeoutMs = Math.min(PING_TIMEOUT_MS, options.timeoutMs);
  const probeModem = newConnectionsModem(pingTimeoutMs);
  const limit = runTimeLimit(options, resolved);
  const dial = dialer(limit, options.timeoutMs);
  const ping = () => pingDaemon(dial, probeModem, resolved, pingTimeoutMs);

  return {
    host: resolved,
    request: <T>(method: 'GET' | 'POST' | 'DELETE', path: string, query?: Record<string, unknown>) =>
      dial<T>(modem, method, path, query),
    ping,
    async probe() {
      await ping();
      // The image store answers too (a reference no image has: the daemon walks its list, sends none).
      const filters = JSON.stringify({ reference: ['safe-docker-prune.invalid/probe:none'] });
      await dial<unknown>(probeModem, 'GET', '/images/json', { filters }, pingTimeoutMs);
    },
    timeLeft: () => limit.deadline - Date.now(),
    close() {
      if (limit.timer) clearTimeout(limit.timer);
      // Idle keep-alive sockets must not hold the process open after the run.
      http.globalAgent.destroy();
      https.globalAgent.destroy();
    },
  };
}

/** The daemon's address: `host`, else DOCKER_HOST, else the default socket; with its TLS prepared (see prepareTls). */
function resolveHost(host: string | undefined): string {
  // docker-modem reads DOCKER_HOST (and its TLS variables) itself; setting it is how an explicit host
  // gets the same parsing as the environment variable.
  if (host) process.env.DOCKER_HOST = host;
  const resolved = host ?? process.env.DOCKER_HOST ?? DEFAULT_HOST;
  prepareTls(resolved, process.env);
  return resolved;
}

/**
 * A modem for the checks, whose requests go over new connections (no keep-alive): a daemon that is
 * shutting down has closed its listener but still answers on the connections the run already holds.
 */
function newConnectionsModem(timeoutMs: number): Modem {
  const client = new Modem({ timeout: timeoutMs });
  const fields = client as unknown as { protocol?: string; agent?: http.Agent };
  fields.agent =
    fields.protocol === 'https'
      ? new https.Agent({ keepAlive: false })
      : new http.Agent({ keepAlive: false });
  return client;
}

/** The whole run's time limit: pending requests are failed when it passes, later ones at once. */
interface RunLimit {
  /** Epoch ms; Infinity without a limit. */
  deadline: number;
  /** The requests in flight, each by the function that fails it. */
  pending: Set<(error: Error) => void>;
  error(): Error;
  timer?: NodeJS.Timeout;
}

function runTimeLimit(options: ConnectOptions, resolved: string): RunLimit {
  const deadline = options.runTimeoutMs === undefined ? Infinity : Date.now() + options.runTimeoutMs;
  const pending = new Set<(error: Error) => void>();
  const error = () =>
    Object.assign(
      new Error(
        `the run reached its time limit (${Math.round((options.runTimeoutMs ?? 0) / 1000)} s` +
          `${options.runLimitRule ? `, ${options.runLimitRule}` : ''}) waiting for the daemon at ${resolved}`,
      ),
      { code: RUN_TIME_LIMIT },
    );
  // (Beyond what a timer can hold, ~24 days, only requests started later check it.)
  const timer =
    deadline - Date.now() > 2 ** 31 - 1
      ? undefined
      : setTimeout(() => {
          for (const fail of pending) fail(error());
          pending.clear();
        }, deadline - Date.now());
  timer?.unref();
  return { deadline, pending, error, timer };
}

/** One request through `client`, answered with the body; `timeoutMs` is the client's own. */
type Dial = <T>(
  client: Modem,
  method: string,
  path: string,
  query?: Record<string, unknown>,
  timeoutMs?: number,
) => Promise<T>;

/** The answers taken as success, and the others' reason, as docker-modem reads them. */
const STATUS_CODES = {
  200: true,
  201: true,
  204: true,
  400: 'bad parameter',
  403: 'forbidden',
  404: 'not found',
  409: 'conflict',
  500: 'server error',
};

/** Requests that fail at the run's time limit (see runTimeLimit) and say why they failed (see requestError). */
function dialer(limit: RunLimit, defaultTimeoutMs: number): Dial {
  return <T>(
    client: Modem,
    method: string,
    path: string,
    query?: Record<string, unknown>,
    timeoutMs = defaultTimeoutMs,
  ) =>
    new Promise<T>((resolve, reject) => {
      if (Date.now() >= limit.deadline) return reject(limit.error());
      limit.pending.add(reject);
      const started = Date.now();
      client.dial(
        {
          path: `${path}?`,
          method,
          // A POST would also send its options as the JSON body; these endpoints take none.
          options: method === 'POST' ? { _query: query ?? {}, _body: {} } : (query ?? {}),
          statusCodes: STATUS_CODES,
        },
        (err: unknown, data: unknown) => {
          limit.pending.delete(reject);
          if (!err) return resolve(data as T);
          reject(requestError(err, started, timeoutMs, `${method} ${path}`));
        },
      );
    });
}

/** What a failed request rejects with: a timeout said as one, a daemon's answer with the request it answered. */
function requestError(err: unknown, started: number, timeoutMs: number, request: string): unknown {
  // docker-modem ends a request that saw no byte for `timeout` with a bare "socket hang up".
  if (isConnectionError(err) && Date.now() - started >= timeoutMs - 50) {
    const seconds = Math.round(timeoutMs / 100) / 10;
    return Object.assign(new Error(`no answer within ${seconds} s`), {
      code: 'ETIMEDOUT',
    });
  }
  // Which call failed, for messages that would otherwise not say (the daemon's text rarely does).
  if (!isConnectionError(err)) Object.assign(err as object, { request });
  return err;
}

/** Rejects unless `/_ping` at `resolved` answers Docker's "OK", saying what answered where it is not Docker. */
async function pingDaemon(dial: Dial, client: Modem, resolved: string, timeoutMs: number): Promise<void> {
  let answer: unknown;
  try {
    answer = await dial<unknown>(client, 'GET', '/_ping', undefined, timeoutMs);
  } catch (error) {
    const why = notDocker(error);
    if (why) throw new Error(`${resolved} is not a Docker daemon: ${why}`);
    throw error;
  }
  // Docker answers the plain text OK; anything else is some other HTTP server.
  const text = String(answer).trim();
  if (text !== 'OK') {
    const what = /^<(!doctype|html)/i.test(text) ? 'an HTML page' : JSON.stringify(text.slice(0, 40));
    throw new Error(`${resolved} is not a Docker daemon: it answered /_ping with ${what}, not Docker's "OK"`);
  }
}
