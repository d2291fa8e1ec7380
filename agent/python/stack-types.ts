/**
 * Python stacks as premortem keeps them: the plain-object form of the
 * PyFrame / PyThread / PyStackSample messages of proto/premortem.proto
 * (lowerCamelCase, as proto/codec.ts encodes them), defined with the other
 * protocol types in proto/codec.ts.
 */
export type { PyFrame, PyThread, PyStackSample } from '../../proto/codec';
