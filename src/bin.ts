// The command's entry (bundled as dist/cli.js): `node dist/cli.js --mode report`.
import { main } from './cli';
import { keepYoungGenerationSmall } from './heap';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`safe-docker-prune: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
// Once the start-up work is queued (src/heap.ts).
setImmediate(keepYoungGenerationSmall);
