// The integration tests' Jest environment: Node's, plus one thing. When a test fails, it prints what the
// action runs made during that test wrote (exit code, the end of stderr and stdout), so a failure in CI,
// where only the log survives, says why the action failed and not only that its exit code was 1.
// Runs are recorded by __tests__/support/action.ts in the test's global `__sdpRuns`.
const { TestEnvironment } = require('jest-environment-node');

const TAIL_LINES = 40;

function tail(text) {
  const lines = String(text ?? '')
    .trimEnd()
    .split('\n');
  const cut = lines.length > TAIL_LINES ? [`… (${lines.length - TAIL_LINES} lines before)`] : [];
  return [...cut, ...lines.slice(-TAIL_LINES)].map((l) => `    ${l}`).join('\n');
}

class ItgEnvironment extends TestEnvironment {
  async handleTestEvent(event) {
    if (event.name === 'test_start' || event.name === 'hook_start') this.global.__sdpRuns = [];
    if (event.name !== 'test_fn_failure' && event.name !== 'hook_failure') return;
    const runs = this.global.__sdpRuns ?? [];
    if (runs.length === 0) return;
    const where = event.test ? event.test.name : `${event.hook?.type ?? 'hook'}`;
    const parts = runs.map((r, i) => {
      // The runner's error and warning commands, wherever they are in a long log.
      const flagged = String(r.stdout ?? '')
        .split('\n')
        .filter((l) => /^::(error|warning)/.test(l));
      return (
        `  run ${i + 1} of ${runs.length}: ${r.what}, exit ${r.code} after ${r.durationMs} ms\n` +
        (flagged.length > 0 ? `  errors and warnings:\n${tail(flagged.join('\n'))}\n` : '') +
        `  stderr:\n${tail(r.stderr)}\n  stdout:\n${tail(r.stdout)}`
      );
    });
    process.stderr.write(`\n=== action runs of the failed "${where}" ===\n${parts.join('\n')}\n\n`);
  }
}

module.exports = ItgEnvironment;
