import { run } from './action';

void run();
