/** Soak, reliability 10: the fuzzers with a large budget (PREMORTEM_FUZZ_RUNS, default 200,000 per parser; 3,000 server connections). */
import { fuzzClientParser, fuzzDecoder, fuzzServer } from './fuzz';
import { envNumber } from './harness';

const RUNS = envNumber('PREMORTEM_FUZZ_RUNS', 200_000);

test(`decodeBatch: ${RUNS} batches`, () => {
  console.log(`decoder fuzz soak: ${JSON.stringify(fuzzDecoder(RUNS))}`);
}, 1_800_000);
test(`tryDecodeClientMessage: ${RUNS} inputs`, () => {
  console.log(`client parser fuzz soak: ${JSON.stringify(fuzzClientParser(RUNS))}`);
}, 1_800_000);
test('server: 3,000 connections of random frames', async () => {
  console.log(`server fuzz soak: ${JSON.stringify(await fuzzServer(envNumber('PREMORTEM_FUZZ_CONNECTIONS', 3000)))}`);
}, 1_800_000);
