/**
 * Node side of the shared codec: finds premortem.proto beside this file (the
 * sources, under ts-jest) or beside the build's (dist/proto/ -> ../../proto)
 * and parses it once. Kept apart from codec.ts so that the viewer bundle never
 * pulls in `fs`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { createCodec, type Codec } from './codec';

/** Overrides the search, e.g. for a packaged install. */
export const PROTO_PATH_ENV = 'PREMORTEM_PROTO';

export function findProtoFile(): string {
  const candidates = [
    process.env[PROTO_PATH_ENV],
    path.resolve(__dirname, 'premortem.proto'),
    path.resolve(__dirname, '..', '..', 'proto', 'premortem.proto'),
  ].filter((p): p is string => !!p);
  for (const p of candidates) if (fs.existsSync(p)) return p;
  throw Object.assign(new Error(`premortem.proto not found (looked in ${candidates.join(', ')}); set ${PROTO_PATH_ENV}`), {
    code: 'PREMORTEM_ERR_PROTO_SCHEMA',
  });
}

let cached: Codec | undefined;

/** The process-wide codec (parsed on first use). */
export function loadCodec(): Codec {
  if (!cached) cached = createCodec(fs.readFileSync(findProtoFile(), 'utf8'));
  return cached;
}
