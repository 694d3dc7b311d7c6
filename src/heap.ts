// V8 grows a process's young generation (two semi-spaces) with its rate of allocation, by tens of MB on
// Node 24; at 5,000 images that is about 30 MB of the run's peak memory (docs/speed.md, Memory). Its
// ceiling is fixed when node starts (`--max-semi-space-size`), which an action cannot pass
// (`runs.using: node24` starts `node dist/index.js`), but the factor by which V8 grows it is read each
// time it grows: set to 1, the new space keeps the size it has (4 MB once the bundle has loaded, by V8's
// heap statistics). Setting a flag takes 3-4 ms and a smaller young generation collects the bundle's
// start-up garbage more often, so the entries set it once their first tick is done (the action's first
// request to the daemon is then on its way). The live objects, and so what the run can hold, are
// unchanged; only short-lived garbage is collected sooner. A node started with a young-generation flag of
// its own, or SDP_YOUNG_GENERATION=default, keeps V8's behaviour.
import { setFlagsFromString } from 'node:v8';

const OWN_FLAG = /--(max|min)-semi-space-size|--semi-space-growth-factor/;

/** Whether the young generation is left to V8's defaults for this process. */
export function youngGenerationIsUsers(env: Record<string, string | undefined>, execArgv: string[]): boolean {
  return (
    env.SDP_YOUNG_GENERATION === 'default' ||
    OWN_FLAG.test(env.NODE_OPTIONS ?? '') ||
    execArgv.some((arg) => OWN_FLAG.test(arg))
  );
}

/** Keeps the young generation at the size it has now, unless the user chose its size. */
export function keepYoungGenerationSmall(): void {
  if (!youngGenerationIsUsers(process.env, process.execArgv))
    setFlagsFromString('--semi-space-growth-factor=1');
}
