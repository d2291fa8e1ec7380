/** Soak, reliability 5: PREMORTEM_RESTARTS (default 20) SIGKILLs of the agent under load. See test/soak/restart.ts. */
import { stopAll } from '../helpers/procs';
import { runRestarts } from './restart';
import { envNumber } from './harness';

afterAll(stopAll);
const ROUNDS = envNumber('PREMORTEM_RESTARTS', 20);

test(`SIGKILL ${ROUNDS} times under load`, async () => {
  console.log(`restart soak: ${JSON.stringify(await runRestarts(ROUNDS))}`);
}, ROUNDS * 15_000 + 60_000);
