import { run } from './action';
import { keepYoungGenerationSmall } from './heap';

void run();
// Once the first request to the daemon is on its way (src/heap.ts).
setImmediate(keepYoungGenerationSmall);
