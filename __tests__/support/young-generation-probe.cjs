// Preloaded (node --require) into a bundle's process by heap.test.ts: when the process exits, it makes
// garbage at a high rate with a share that survives a few collections (what grows V8's young generation),
// then prints on stderr the largest capacity the new space reached, in bytes (`new-space-max=N`): what
// it holds and can still take, V8's own capacity (space_size counts pages kept aside as well).
// It also reports, as `set-flags=… after N connection(s)`, every V8 flag the bundle sets and how many connections
// had been started by then (the entries set theirs after the first request is on its way).
'use strict';
const net = require('node:net');
const v8 = require('node:v8');

let connects = 0;
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  connects++;
  return connect.apply(this, args);
};
const setFlagsFromString = v8.setFlagsFromString;
v8.setFlagsFromString = function (flags) {
  process.stderr.write(`set-flags=${flags} after ${connects} connection(s)\n`);
  return setFlagsFromString.call(this, flags);
};

process.on('exit', () => {
  const capacity = () => {
    const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    return space.space_used_size + space.space_available_size;
  };
  let max = capacity();
  const ring = new Array(20_000);
  for (let i = 0; i < 400_000; i++) {
    ring[i % ring.length] = { i, text: `object ${i}`, list: [i, i + 1, i + 2] };
    if (i % 1000 === 0) max = Math.max(max, capacity());
  }
  process.stderr.write(`new-space-max=${max}\n`);
});
