#!/usr/bin/env bash
# Production node_modules for the installed agent (called by scripts/package.sh):
#   bash scripts/package-modules.sh STAGED_LIB_DIR
# STAGED_LIB_DIR already holds dist/agent. The packages shipped are the
# package.json dependencies that dist/agent requires at run time, at the
# versions of package-lock.json (npm ci, then npm prune to that set): build-time
# dependencies listed under "dependencies" (esbuild, uplot and node-addon-api,
# which the viewer bundle and the addon already contain) stay out. Files Node
# never loads are dropped (source maps, type declarations, the ESM copies of the
# OpenTelemetry packages, which CommonJS require() does not select), then every
# shipped package is required once from the staged tree.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[package] %s\n' "$*" >&2; }
fail() { printf '[package] FAILED: %s\n' "$*" >&2; exit 1; }

lib=${1:?usage: package-modules.sh STAGED_LIB_DIR}
[ -d "$lib/dist/agent" ] || fail "$lib/dist/agent is missing: stage the agent first"

# The dependencies dist/agent and dist/proto require; a bare require of anything else is an error.
runtime=$(node - "$lib" <<'EOF'
const fs = require('fs');
const path = require('path');
const { builtinModules } = require('module');
const lib = process.argv[2];
const deps = require(path.resolve('package.json')).dependencies || {};
const used = new Set();
const walk = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.js')) {
      for (const m of fs.readFileSync(p, 'utf8').matchAll(/require\("([^"./][^"]*)"\)/g)) {
        const spec = m[1].replace(/^node:/, '');
        if (builtinModules.includes(spec) || builtinModules.includes(spec.split('/')[0])) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if (!(name in deps)) throw new Error(`${p} requires ${name}, which is not in package.json "dependencies"`);
        used.add(name);
      }
    }
  }
};
walk(path.join(lib, 'dist', 'agent'));
walk(path.join(lib, 'dist', 'proto'));
process.stdout.write([...used].sort().join('\n'));
EOF
)
[ -n "$runtime" ] || fail "found no run-time dependency in $lib/dist/agent"

say "npm ci --omit=dev into $lib"
cp package.json package-lock.json "$lib/"
(cd "$lib" && npm ci --omit=dev --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error >&2) || fail "npm ci --omit=dev"

# The installed package.json: what the agent reads (name, version) and the run-time dependencies.
node - "$lib" "$runtime" <<'EOF'
const fs = require('fs');
const path = require('path');
const [lib, runtime] = process.argv.slice(2);
const src = require(path.resolve('package.json'));
const keep = new Set(runtime.split('\n'));
const out = {
  name: src.name, version: src.version, description: src.description, license: src.license, private: true,
  engines: src.engines, bin: src.bin,
  dependencies: Object.fromEntries(Object.entries(src.dependencies).filter(([k]) => keep.has(k))),
};
fs.writeFileSync(path.join(lib, 'package.json'), JSON.stringify(out, null, 2) + '\n');
EOF
(cd "$lib" && npm prune --omit=dev --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error >&2) || fail "npm prune"
rm -f "$lib/package-lock.json"

find "$lib/node_modules" -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete
find "$lib/node_modules/@opentelemetry" -mindepth 3 -maxdepth 3 -type d \( -path '*/build/esm' -o -path '*/build/esnext' \) -exec rm -rf {} +
find "$lib/node_modules" -depth -type d -empty -delete

# Every shipped package loads from the staged tree alone.
(cd "$lib" && node -e '
  const deps = Object.keys(require("./package.json").dependencies);
  for (const d of deps) require(require.resolve(d, { paths: [process.cwd()] }));
  process.stderr.write(`[package] node_modules: ${deps.length} run-time dependencies load: ${deps.join(", ")}\n`);
') || fail "a run-time dependency does not load from $lib/node_modules"
