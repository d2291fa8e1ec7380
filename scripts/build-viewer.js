#!/usr/bin/env node
/**
 * Bundles the viewer (viewer/) into dist/viewer/ with esbuild's JS API:
 *   index.html  the page shell
 *   app.js      one IIFE: viewer code, the shared codec (proto/codec.ts),
 *               protobufjs and uPlot, with proto/premortem.proto embedded as text
 *   app.css     uPlot's stylesheet followed by the viewer's
 * Everything is local (no CDN): the page works offline, and app.js/app.css can
 * be inlined into one self-contained HTML post-mortem (see viewer/src/main.ts).
 *
 * Usage: node scripts/build-viewer.js [--watch] [--dev]
 */
'use strict';
const fs = require('fs');
const path = require('path');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..');
const outDir = path.join(root, 'dist', 'viewer');
const watch = process.argv.includes('--watch');
const dev = process.argv.includes('--dev') || watch;

/** FNV-1a over UTF-16 code units: the key of one generated function (same in the page). */
const HASH_SOURCE = `function hash(s) {
  var h = 0x811c9dc5;
  for (var i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
  return h.toString(16) + ':' + s.length;
}`;
// eslint-disable-next-line no-new-func
const hash = new Function(`${HASH_SOURCE}; return hash;`)();

/**
 * Runs protobufjs's code generation for every message of proto/premortem.proto
 * here, at build time, and returns a CommonJS module holding each generated
 * function as real code (see viewer/src/codegen-precompiled.js: the viewer is
 * served with a CSP that forbids eval).
 */
function codegenTable() {
  // A fresh protobufjs instance: the recording wrapper must not leak into anything else.
  for (const k of Object.keys(require.cache)) if (k.includes(`${path.sep}protobufjs${path.sep}`)) delete require.cache[k];
  const protobuf = require('protobufjs');
  const original = protobuf.util.codegen;
  const entries = new Map();
  protobuf.util.codegen = function recordingCodegen(params, name) {
    const gen = original(params, name);
    function Codegen(fmt) {
      if (typeof fmt === 'string') { gen.apply(null, arguments); return Codegen; }
      const src = gen.toString();
      const keys = fmt ? Object.keys(fmt) : [];
      entries.set(`${keys.join(',')}|${hash(src)}`, `function(${keys.join(',')}){return ${src}}`);
      return gen(fmt);
    }
    Codegen.toString = gen.toString;
    return Codegen;
  };
  try {
    // Same parse options as createCodec() in proto/codec.ts.
    const text = fs.readFileSync(path.join(root, 'proto', 'premortem.proto'), 'utf8');
    const pbRoot = protobuf.parse(text, { keepCase: false }).root;
    pbRoot.resolveAll();
    const visit = (ns) => {
      for (const child of ns.nestedArray || []) {
        if (child instanceof protobuf.Type) {
          void child.ctor;
          child.setup();
        }
        if (child.nestedArray) visit(child);
      }
    };
    visit(pbRoot);
  } finally {
    protobuf.util.codegen = original;
  }
  const rows = [...entries].map(([key, fn]) => `  ${JSON.stringify(key)}: ${fn}`);
  return `'use strict';
${HASH_SOURCE}
var table = {
${rows.join(',\n')}
};
exports.size = ${entries.size};
exports.lookup = function (src, keys) {
  var f = table[keys.join(',') + '|' + hash(src)];
  return typeof f === 'function' ? f : undefined;
};
`;
}

/** Swaps @protobufjs/codegen for the precompiled table in the viewer bundle. */
const precompiledCodegen = {
  name: 'premortem-precompiled-codegen',
  setup(build) {
    build.onResolve({ filter: /^@protobufjs\/codegen$/ }, () => ({ path: path.join(root, 'viewer', 'src', 'codegen-precompiled.js') }));
    build.onResolve({ filter: /^premortem:codegen-table$/ }, () => ({ path: 'codegen-table', namespace: 'premortem' }));
    build.onLoad({ filter: /.*/, namespace: 'premortem' }, () => ({ contents: codegenTable(), loader: 'js', resolveDir: root }));
  },
};

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  const options = {
    absWorkingDir: root,
    // main.ts imports uPlot's CSS and viewer/style.css: esbuild writes them to app.css.
    entryPoints: { app: path.join(root, 'viewer', 'src', 'main.ts') },
    outdir: outDir,
    entryNames: '[name]',
    bundle: true,
    // IIFE, not ESM: the same file must run when inlined into an HTML export.
    format: 'iife',
    globalName: 'premortemViewer',
    platform: 'browser',
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    // The schema travels inside the bundle, parsed by the same loader the agent uses.
    loader: { '.proto': 'text' },
    minify: !dev,
    sourcemap: dev ? 'inline' : false,
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': dev ? '"development"' : '"production"' },
    metafile: true,
    plugins: [precompiledCodegen],
  };
  if (watch) {
    const ctx = await esbuild.context({ ...options, plugins: [precompiledCodegen, { name: 'finish', setup(b) { b.onEnd(finish); } }] });
    await ctx.watch();
    process.stderr.write('[viewer] watching viewer/, agent/, proto/\n');
    return;
  }
  const result = await esbuild.build(options);
  finish(result);
}

function finish(result) {
  if (result.errors && result.errors.length) return;
  fs.copyFileSync(path.join(root, 'viewer', 'index.html'), path.join(outDir, 'index.html'));
  const size = (f) => (fs.statSync(path.join(outDir, f)).size / 1024).toFixed(0) + ' KiB';
  process.stderr.write(`[viewer] dist/viewer: app.js ${size('app.js')}, app.css ${size('app.css')}\n`);
}

main().catch((err) => {
  process.stderr.write(`[viewer] build failed: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
