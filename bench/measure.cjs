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
  const requests = {};
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (...args) {
    if (firstConnectMs === undefined) firstConnectMs = performance.now();
    return connect.apply(this, args);
  };
  // Node writes a request's head as one string (or a buffer) starting with the request line; TLS sockets
  // inherit this write too. Paths are grouped by shape: IDs and names become `{id}`.
  const requestLine = /^(GET|HEAD|POST|PUT|DELETE|PATCH) (\S+) HTTP\/1\.[01]\r\n/;
  const write = net.Socket.prototype.write;
  net.Socket.prototype.write = function (chunk, ...rest) {
    const head =
      typeof chunk === 'string'
        ? chunk.slice(0, 2048)
        : Buffer.isBuffer(chunk)
          ? chunk.subarray(0, 2048).toString('latin1')
          : '';
    const m = requestLine.exec(head);
    if (m) {
      const path = m[2]
        .split('?')[0]
        .replace(/^\/v\d+\.\d+/, '')
        .replace(/^\/(images|containers|networks|volumes)\/(?!(json|prune|load|create)$)[^/]+/, '/$1/{id}');
      const key = `${m[1]} ${path}`;
      requests[key] = (requests[key] ?? 0) + 1;
    }
    return write.call(this, chunk, ...rest);
  };
  process.on('exit', () => {
    const usage = process.resourceUsage();
    fs.writeFileSync(
      out,
      JSON.stringify({ firstConnectMs, maxRssKb: usage.maxRSS, userMs: usage.userCPUTime / 1000, requests }),
    );
  });
}
