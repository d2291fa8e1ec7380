/**
 * Reliability 10 (short budget): property-based fuzzing of the record decoder,
 * the client-message parser and the server's handling of client frames. The
 * long budget is test/soak/fuzz.test.ts. See test/soak/fuzz.ts.
 * Existing coverage: test/unit/proto.test.ts feeds 8k random inputs to the codec;
 * test/kernel/records.test.ts checks truncated and oversized records.
 */
import { fuzzClientParser, fuzzDecoder, fuzzServer } from '../soak/fuzz';

test('decodeBatch: 3,000 generated batches over every registered decoder, only RecordFormatError, none slow', () => {
  const r = fuzzDecoder(3000);
  console.log(`decoder fuzz: ${JSON.stringify(r)}`);
  expect(r.records).toBeGreaterThan(0);
  expect(r.typedErrors).toBeGreaterThan(0);
});

test('tryDecodeClientMessage: 5,000 generated inputs, errors only as ProtoError values', () => {
  const r = fuzzClientParser(5000);
  console.log(`client parser fuzz: ${JSON.stringify(r)}`);
  expect(r.ok).toBeGreaterThan(0);
  expect(r.errors).toBeGreaterThan(0);
});

test('server: 150 connections of random frames end in documented close codes; the server stays up', async () => {
  const r = await fuzzServer(150);
  console.log(`server fuzz: ${JSON.stringify(r)}`);
  expect(Object.keys(r.closes).length).toBeGreaterThan(1);
}, 60_000);
