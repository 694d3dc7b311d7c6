// docker-modem loads `ssh2` (its ssh:// transport) as soon as it is loaded itself, which cost every run
// ~15 ms of its start (and ~1 MB), though only an ssh:// docker-host ever uses it. The bundle maps
// the module `ssh2` here (tsconfig.json `paths`, which ncc follows); the real one is evaluated on the first
// ssh connection. docker-modem uses nothing of ssh2 but `Client`.
/* eslint-disable @typescript-eslint/no-require-imports */
export class Client {
  constructor(...args: unknown[]) {
    const Real = require('ssh2/lib/index.js').Client;
    return new Real(...args);
  }
}
