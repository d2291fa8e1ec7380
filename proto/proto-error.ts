/**
 * The one error the codec throws (proto/codec.ts), with a stable code. Kept apart
 * so the codec's modules (codec.ts, plain.ts) share it without importing each other.
 */
export type ProtoErrorCode =
  | 'PREMORTEM_ERR_PROTO_DECODE'   // bytes are not a valid message of the expected type
  | 'PREMORTEM_ERR_PROTO_ENCODE'   // the object cannot be encoded (wrong type, unknown enum...)
  | 'PREMORTEM_ERR_PROTO_SCHEMA';  // the .proto text does not parse or lacks a message

export class ProtoError extends Error {
  readonly code: ProtoErrorCode;
  constructor(code: ProtoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProtoError';
    this.code = code;
  }
}
