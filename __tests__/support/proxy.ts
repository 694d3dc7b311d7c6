// Fault injection for integration tests: an HTTP proxy on its own unix socket in front of a private
// daemon's socket, which answers chosen requests with errors, delays, dropped connections or silence and
// forwards everything else verbatim. Plus two stand-ins for a daemon that is not there: a TCP server that
// accepts connections and never answers, and an HTTP server that is not Docker. Everything listens on
// loopback or in /tmp only, and close() ends every connection it holds.
import { mkdtemp, rm } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';

export type Fault =
  /** Destroys the client's connection without answering. */
  | { kind: 'drop' }
  /** Answers `code` with a Docker-style JSON body `{"message": …}`. */
  | { kind: 'status'; code: number; message?: string }
  /** Waits `ms`, then forwards (unless the client has gone meanwhile). */
  | { kind: 'delay'; ms: number }
  /** Never answers (until close()). */
  | { kind: 'hang' }
  /** Awaits `run` (another job's work on the real daemon, e.g. a tag moved), then forwards. */
  | { kind: 'before'; run: () => Promise<void> }
  /** Answers 200 and then sends a space every `everyMs`, never ending: no idle timeout ever fires. */
  | { kind: 'trickle'; everyMs: number };

export interface ProxiedRequest {
  method: string;
  /** The request target as the client sent it, e.g. `/images/sha256%3Aab…?noprune=false`. */
  path: string;
  /** 1-based sequence number of this request among all the proxy received. */
  n: number;
}

export interface ProxyLogEntry {
  method: string;
  path: string;
  /** The status the client got (forwarded or injected); undefined while pending, dropped or hung. */
  status?: number;
  /** The fault applied, if any (`drop`, `status 500`, `delay 300`, `hang`), or `upstream error`. */
  fault?: string;
}

export interface FaultProxy {
  /** `unix:///tmp/sdp-proxy-…/proxy.sock`, the form the action's `docker-host` input takes. */
  host: string;
  socket: string;
  /** Decides a fault per request; undefined (the rule or its answer) forwards. May be replaced any time. */
  rule: ((req: ProxiedRequest) => Fault | undefined) | undefined;
  log: ProxyLogEntry[];
  /**
   * Stops listening (the socket file goes, so new connections fail like a stopped daemon's) and
   * destroys every client and upstream connection. Safe to call twice.
   */
  close(): Promise<void>;
}

export async function startFaultProxy(targetSocket: string | undefined): Promise<FaultProxy> {
  // A TLS daemon (PrivateDaemon.socket undefined) has no socket to stand in front of.
  if (!targetSocket)
    throw new Error('startFaultProxy needs a daemon with a unix socket (feature unix-socket)');
  const dir = await mkdtemp('/tmp/sdp-proxy-');
  const socket = path.join(dir, 'proxy.sock');
  const upstreamAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const upstreamRequests = new Set<http.ClientRequest>();
  const clientSockets = new Set<net.Socket>();
  let n = 0;
  let closing = false;

  const proxy: FaultProxy = {
    host: `unix://${socket}`,
    socket,
    rule: undefined,
    log: [],
    close: () => (closed ??= close()),
  };
  let closed: Promise<void> | undefined;

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, entry: ProxyLogEntry) => {
    if (closing || req.socket.destroyed) {
      req.socket.destroy();
      return;
    }
    const upstream = http.request({
      socketPath: targetSocket,
      agent: upstreamAgent,
      method: req.method,
      path: req.url,
      headers: req.headers,
    });
    upstreamRequests.add(upstream);
    upstream.on('close', () => upstreamRequests.delete(upstream));
    upstream.on('response', (up) => {
      entry.status = up.statusCode;
      // Node frames the body itself (chunked or by length); hop-by-hop headers stay behind.
      const headers: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(up.headers)) {
        if (value === undefined || ['connection', 'keep-alive', 'transfer-encoding'].includes(name)) continue;
        headers[name] = value;
      }
      res.writeHead(up.statusCode ?? 502, up.statusMessage, headers);
      // Streams (image load progress, events) are passed on as they come.
      res.flushHeaders();
      up.pipe(res);
      up.on('error', () => res.destroy());
    });
    // The daemon went away (or the proxy is closing): the client sees its connection end, as it would.
    upstream.on('error', () => {
      entry.fault ??= 'upstream error';
      req.socket.destroy();
    });
    req.pipe(upstream);
    // A client that gives up aborts the forwarded request too.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
  };

  const server = http.createServer((req, res) => {
    const entry: ProxyLogEntry = { method: req.method ?? '', path: req.url ?? '' };
    proxy.log.push(entry);
    const fault = proxy.rule?.({ method: entry.method, path: entry.path, n: ++n });
    if (!fault) return forward(req, res, entry);
    switch (fault.kind) {
      case 'drop':
        entry.fault = 'drop';
        req.socket.destroy();
        return;
      case 'status': {
        entry.fault = `status ${fault.code}`;
        entry.status = fault.code;
        req.resume();
        const body = JSON.stringify({ message: fault.message ?? `injected fault ${fault.code}` });
        res.writeHead(fault.code, {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
        });
        res.end(body);
        return;
      }
      case 'delay': {
        entry.fault = `delay ${fault.ms}`;
        // Body bytes wait (paused) until the request is forwarded.
        req.pause();
        // (The listener goes when the timer fires: keep-alive sockets carry many delayed requests.)
        const cancel = () => clearTimeout(timer);
        const timer = setTimeout(() => {
          req.socket.off('close', cancel);
          forward(req, res, entry);
        }, fault.ms);
        req.socket.once('close', cancel);
        return;
      }
      case 'before': {
        entry.fault = 'before';
        req.pause();
        // A side effect that fails is the test's own error: it shows in the log, the request still goes.
        fault.run().then(
          () => forward(req, res, entry),
          (error: unknown) => {
            entry.fault = `before failed: ${String(error)}`;
            forward(req, res, entry);
          },
        );
        return;
      }
      case 'hang':
        entry.fault = 'hang';
        req.resume();
        return;
      case 'trickle': {
        entry.fault = 'trickle';
        entry.status = 200;
        req.resume();
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.flushHeaders();
        const timer = setInterval(() => res.write(' '), fault.everyMs);
        res.on('close', () => clearInterval(timer));
        return;
      }
    }
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: net.Socket) => {
    clientSockets.add(s);
    s.on('close', () => clientSockets.delete(s));
  });
  server.on('clientError', (_err, s) => s.destroy());

  async function close(): Promise<void> {
    closing = true;
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of clientSockets) s.destroy();
    for (const r of upstreamRequests) r.destroy();
    upstreamAgent.destroy();
    await stopped;
    await rm(dir, { recursive: true, force: true });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return proxy;
}

/** The image name a request deletes (`DELETE /[v1.xx/]images/NAME`), decoded, or undefined. */
export function deletedImage(req: { method: string; path: string }): string | undefined {
  if (req.method !== 'DELETE') return undefined;
  const m = /^(?:\/v[\d.]+)?\/images\/([^?]+)/.exec(req.path);
  return m ? decodeURIComponent(m[1]) : undefined;
}

export interface LoopbackServer {
  /** `tcp://127.0.0.1:PORT` */
  host: string;
  port: number;
  /** Connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1 that accepts connections and never sends a byte. */
export async function startSilentServer(): Promise<LoopbackServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    result.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    // Reads (and drops) what the client sends, so its writes never block.
    s.resume();
  });
  const port = await listenLoopback(server);
  const result: LoopbackServer = {
    host: `tcp://127.0.0.1:${port}`,
    port,
    connections: 0,
    close: async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await stopped;
    },
  };
  return result;
}

/** An HTTP server on 127.0.0.1 that is not Docker: 404 `not found` (text/plain) to every request. */
export async function startNotDocker(): Promise<LoopbackServer & { paths: string[] }> {
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(`${req.method} ${req.url}`);
    req.resume();
    res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 9 });
    res.end('not found');
  });
  const port = await listenLoopback(server);
  const result = {
    host: `tcp://127.0.0.1:${port}`,
    port,
    connections: 0,
    paths,
    close: async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await stopped;
    },
  };
  server.on('connection', () => result.connections++);
  return result;
}

/** A loopback TCP port nothing listens on (bound and released here, so it was free a moment ago). */
export async function unusedPort(): Promise<number> {
  const server = net.createServer();
  const port = await listenLoopback(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function listenLoopback(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

export interface UnixServer {
  /** `unix:///tmp/sdp-…/docker.sock` */
  host: string;
  socket: string;
  /** Connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

/** A unix socket whose server answers every connection with bytes that are not HTTP, then closes it. */
export function startGarbageSocket(): Promise<UnixServer> {
  return listenUnix(
    net.createServer((s) => {
      s.on('error', () => undefined);
      s.resume();
      s.end(Buffer.from('\u0000\u00ff\u00fegarbage: not HTTP at all\r\n\r\n\u0001\u0002', 'latin1'));
    }),
  );
}

/** A unix socket served by an HTTP server that answers 200 with an HTML page to every request. */
export function startHtmlSocket(): Promise<UnixServer> {
  const page =
    '<!DOCTYPE html><html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>\n';
  return listenUnix(
    http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(page) });
      res.end(page);
    }),
  );
}

async function listenUnix(server: net.Server): Promise<UnixServer> {
  const dir = await mkdtemp('/tmp/sdp-other-');
  const socket = path.join(dir, 'docker.sock');
  const sockets = new Set<net.Socket>();
  const result: UnixServer = {
    host: `unix://${socket}`,
    socket,
    connections: 0,
    close: async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await stopped;
      await rm(dir, { recursive: true, force: true });
    },
  };
  server.on('connection', (s: net.Socket) => {
    result.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return result;
}
