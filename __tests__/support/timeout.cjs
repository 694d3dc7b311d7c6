// Integration tests wait on real daemons: a test that names no timeout gets a minute, not Jest's 5 s, which a
// busy 2-core machine exceeded for a test that loads a fleet and runs the action twice.
/* global jest */
jest.setTimeout(60_000);
