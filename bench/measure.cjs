// Preloaded into the action's node process by the benchmark (NODE_OPTIONS=--require …/measure.cjs): it
// records, without changing the action, when the first connection to the daemon starts (cold start,
// counted from node's own start), every HTTP request written to a socket (method and path) and the
// process's peak resident memory, and writes them as JSON to $SDP_MEASURE_OUT when the process exits.
'use strict';
const fs = require('node:fs');
const net = require('node:net');

const out = process.env.SDP_MEASURE_OUT;
if (out) {
  let firstConnectMs;
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (...args) {
    if (firstConnectMs === undefined) firstConnectMs = performance.now();
    return connect.apply(this, args);
  };
  // Node's HTTP client writes a request's head as one string starting with the request line (TLS sockets
  // inherit this write too). Only that line is looked at, and raw paths are counted as they come; grouping
  // them by shape (IDs and names become `{id}`) waits for the exit, so that the measuring itself makes
  // next to no garbage and does not grow the heap it measures.
  const raw = new Map();
  const write = net.Socket.prototype.write;
  net.Socket.prototype.write = function (chunk, ...rest) {
    if (typeof chunk === 'string') {
      const space = chunk.indexOf(' ');
      const end = space > 2 && space < 8 ? chunk.indexOf(' HTTP/1.', space) : -1;
      if (end > 0 && end < 4096) {
        const line = chunk.slice(0, end);
        raw.set(line, (raw.get(line) ?? 0) + 1);
      }
    }
    return write.call(this, chunk, ...rest);
  };
  const grouped = () => {
    const requests = {};
    for (const [line, n] of raw) {
      const [method, target] = line.split(' ');
      const path = target
        .split('?')[0]
        .replace(/^\/v\d+\.\d+/, '')
        .replace(/^\/(images|containers|networks|volumes)\/(?!(json|prune|load|create)$)[^/]+/, '/$1/{id}');
      const key = `${method} ${path}`;
      requests[key] = (requests[key] ?? 0) + n;
    }
    return requests;
  };
  process.on('exit', () => {
    const usage = process.resourceUsage();
    fs.writeFileSync(
      out,
      JSON.stringify({
        firstConnectMs,
        maxRssKb: usage.maxRSS,
        userMs: usage.userCPUTime / 1000,
        requests: grouped(),
      }),
    );
  });
}
