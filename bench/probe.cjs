// Preloaded with --require by scripts/coldstart.mjs: records when the process first opens a socket (ms
// since the process started, performance.now()'s origin) and its peak RSS, into the file PROBE_OUT names.
/* eslint-disable @typescript-eslint/no-require-imports -- a --require preload is CommonJS */
const net = require('node:net');
const fs = require('node:fs');
const { performance } = require('node:perf_hooks');
let first;
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  if (first === undefined) first = performance.now();
  return connect.apply(this, args);
};
process.on('exit', () => {
  fs.writeFileSync(
    process.env.PROBE_OUT,
    JSON.stringify({ firstConnectMs: first, maxRssKb: process.resourceUsage().maxRSS }),
  );
});
