// A guard against a hang, not a speed check: the content-store tests read real files, and took over
// Jest's 5 s default while two engines' integration tests loaded the 2 cores.
/* global jest */
jest.setTimeout(30_000);
