/**
 * Loads the native addon (build/Release/premortem.node) once, with an error
 * that says how to build it when it is missing.
 */
import * as fs from 'fs';
import * as path from 'path';
import type * as Addon from '../native/index';

export type { Tracer, TracerOptions, TracerStats, ProbeStatus, Layout, NativeError } from '../native/index';

let cached: typeof Addon | undefined;

/** Where the addon lives below the project root, in a checkout and in the installed package alike. */
const ADDON_RELATIVE_PATH = path.join('build', 'Release', 'premortem.node');

/**
 * The project root, whether we run from agent/ (ts-jest), dist/agent/ of a
 * checkout (package.json + CMakeLists.txt) or an installed package
 * (/usr/lib/premortem: package.json + the prebuilt addon, no sources).
 */
export function projectRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    const hasPackageJson = fs.existsSync(path.join(dir, 'package.json'));
    if (hasPackageJson && (fs.existsSync(path.join(dir, 'CMakeLists.txt')) || fs.existsSync(path.join(dir, ADDON_RELATIVE_PATH)))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the premortem project root above ${__dirname}`);
}

export function addonPath(): string {
  return path.join(projectRoot(), ADDON_RELATIVE_PATH);
}

export function loadAddon(): typeof Addon {
  if (cached) return cached;
  const file = addonPath();
  if (!fs.existsSync(file)) {
    const err = new Error(`the native addon is not built (${file} is missing): run \`npm run build\``) as Error & { code: string };
    err.code = 'PREMORTEM_ERR_NOT_BUILT';
    throw err;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  cached = require(file) as typeof Addon;
  return cached;
}
