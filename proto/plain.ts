/**
 * Between protobufjs messages and the plain objects of proto/types/ (the form
 * documented in proto/codec.ts): enums as kebab-case names, 64-bit integers as
 * numbers, defaults filled, integers checked and rounded on the way in, map keys
 * "__proto__" dropped both ways.
 */
import * as protobuf from 'protobufjs';
import { ProtoError } from './proto-error';

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const UNSIGNED_TYPES = new Set(['uint32', 'uint64', 'fixed32', 'fixed64']);
const INT_TYPES = new Set([
  'int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'int64', 'uint64', 'sint64', 'fixed64', 'sfixed64',
]);

/** Per-enum tables between numeric values and kebab-case names. */
interface EnumTable { toName: Map<number, string>; toValue: Map<string, number>; zeroName: string }

function enumPrefix(name: string): string {
  // VerdictKind -> VERDICT_KIND_
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase() + '_';
}

function buildEnumTable(e: protobuf.Enum): EnumTable {
  const prefix = enumPrefix(e.name);
  const toName = new Map<number, string>();
  const toValue = new Map<string, number>();
  for (const [full, value] of Object.entries(e.values)) {
    const bare = full.startsWith(prefix) ? full.slice(prefix.length) : full;
    const kebab = bare.toLowerCase().replace(/_/g, '-');
    if (!toName.has(value)) toName.set(value, kebab);
    toValue.set(kebab, value);
  }
  return { toName, toValue, zeroName: toName.get(0) ?? '' };
}

function longToNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object' && typeof (v as { toNumber?: unknown }).toNumber === 'function') {
    return (v as { toNumber(): number }).toNumber();
  }
  if (typeof v === 'string') return Number(v);
  return 0;
}

export interface PlainConverter {
  /** A decoded message as a plain object; `nulls`: absent sub-messages are null instead of left out. */
  toPlain(type: protobuf.Type, m: protobuf.Message, nulls?: boolean): Record<string, unknown>;
  /** A plain object as protobufjs takes it (enums numeric, integers checked); throws ProtoError. */
  fromPlain(type: protobuf.Type, obj: unknown, path: string): unknown;
}

type EnumTableOf = (e: protobuf.Enum) => EnumTable;

/** Decoded message -> plain object. */
function makeToPlain(enumTable: EnumTableOf): PlainConverter['toPlain'] {
  function valueOut(field: protobuf.Field, v: unknown, nulls: boolean): unknown {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Enum) {
      const table = enumTable(rt);
      return table.toName.get(v as number) ?? table.zeroName;
    }
    if (rt instanceof protobuf.Type) return toPlain(rt, v as protobuf.Message, nulls);
    if (LONG_TYPES.has(field.type)) return longToNumber(v);
    return v;
  }
  function toPlain(type: protobuf.Type, m: protobuf.Message, nulls = false): Record<string, unknown> {
    const src = m as unknown as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const field of type.fieldsArray) {
      if (field.partOf && src[field.partOf.name] !== field.name) continue;
      const v = src[field.name];
      if (field.map) {
        const map: Record<string, unknown> = {};
        if (v && typeof v === 'object') {
          for (const k of Object.keys(v)) {
            if (k === '__proto__') continue; // never let a peer set a prototype
            map[k] = valueOut(field, (v as Record<string, unknown>)[k], nulls);
          }
        }
        out[field.name] = map;
      } else if (field.repeated) {
        out[field.name] = Array.isArray(v) ? v.map((x) => valueOut(field, x, nulls)) : [];
      } else if (field.resolvedType instanceof protobuf.Type) {
        if (v != null) out[field.name] = toPlain(field.resolvedType, v as protobuf.Message, nulls);
        else if (nulls && !field.partOf) out[field.name] = null;
      } else {
        out[field.name] = valueOut(field, v, nulls);
      }
    }
    for (const oneof of type.oneofsArray) {
      const set = src[oneof.name];
      if (typeof set === 'string') out[oneof.name] = set;
    }
    return out;
  }
  return toPlain;
}

/** Plain object -> protobufjs-ready object (enums numeric, ints checked). */
function makeFromPlain(enumTable: EnumTableOf): PlainConverter['fromPlain'] {
  function valueIn(field: protobuf.Field, v: unknown, path: string): unknown {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Enum) {
      if (typeof v === 'number') return v;
      const value = enumTable(rt).toValue.get(String(v));
      if (value === undefined) {
        throw new ProtoError('PREMORTEM_ERR_PROTO_ENCODE',
          `${path}: '${String(v)}' is not one of ${[...enumTable(rt).toValue.keys()].join(', ')}`);
      }
      return value;
    }
    if (rt instanceof protobuf.Type) return fromPlain(rt, v, path);
    if (INT_TYPES.has(field.type) && typeof v === 'number') {
      if (!Number.isFinite(v)) throw new ProtoError('PREMORTEM_ERR_PROTO_ENCODE', `${path}: ${v} is not a finite number`);
      // Integer fields get whole numbers: callers often compute ns / 1e6.
      const n = Math.round(v);
      if (n < 0 && UNSIGNED_TYPES.has(field.type)) {
        throw new ProtoError('PREMORTEM_ERR_PROTO_ENCODE', `${path}: ${v} is negative but the field is unsigned`);
      }
      return n;
    }
    return v;
  }
  function fromPlain(type: protobuf.Type, obj: unknown, path: string): unknown {
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw new ProtoError('PREMORTEM_ERR_PROTO_ENCODE', `${path}: an object is expected for ${type.name}`);
    }
    const src = obj as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const field of type.fieldsArray) {
      const v = src[field.name];
      if (v === undefined || v === null) continue;
      const at = `${path}.${field.name}`;
      if (field.map) {
        if (typeof v !== 'object') throw new ProtoError('PREMORTEM_ERR_PROTO_ENCODE', `${at}: an object (map) is expected`);
        const map: Record<string, unknown> = {};
        for (const k of Object.keys(v as object)) {
          if (k === '__proto__') continue;
          map[k] = valueIn(field, (v as Record<string, unknown>)[k], `${at}[${k}]`);
        }
        out[field.name] = map;
      } else if (field.repeated) {
        if (!Array.isArray(v)) throw new ProtoError('PREMORTEM_ERR_PROTO_ENCODE', `${at}: an array is expected`);
        out[field.name] = v.map((x, i) => valueIn(field, x, `${at}[${i}]`));
      } else {
        out[field.name] = valueIn(field, v, at);
      }
    }
    return out;
  }
  return fromPlain;
}

/** A converter with its own cache of enum tables (one per schema). */
export function createPlainConverter(): PlainConverter {
  const enums = new Map<protobuf.Enum, EnumTable>();
  function enumTable(e: protobuf.Enum): EnumTable {
    let t = enums.get(e);
    if (!t) { t = buildEnumTable(e); enums.set(e, t); }
    return t;
  }
  return { toPlain: makeToPlain(enumTable), fromPlain: makeFromPlain(enumTable) };
}
