/**
 * The TypeScript mirror of proto/premortem.proto, in the plain-object form the
 * codec (proto/codec.ts) encodes and decodes: one module per thing described.
 * test/unit/proto.test.ts fails when a field or enum value exists on one side only,
 * or when an interface here names no message of the .proto.
 */
export * from './identity';
export * from './timeline';
export * from './verdict';
export * from './stacks';
export * from './bundle';
export * from './stream';
