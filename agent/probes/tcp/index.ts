/**
 * tcp: TCP sockets of watched service ports, each in its own network
 * namespace. layout.ts: record layouts, decoders, counters; watcher.ts: the
 * (namespace, port) watch table the agent keeps in the kernel; ingest.ts:
 * what the agent does with the records.
 */
export * from './layout';
export * from './watcher';
