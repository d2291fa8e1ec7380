'use strict';
/**
 * Stand-in for @protobufjs/codegen in the viewer bundle.
 *
 * protobufjs builds each message's encode/decode/verify/fromObject/toObject
 * and constructor as source text and evaluates it with `Function(...)`. The
 * agent serves the viewer with a Content-Security-Policy that forbids eval, so
 * scripts/build-viewer.js runs the same generation at build time (same
 * protobufjs, same proto/premortem.proto) and compiles every function into the
 * bundle. Here the generated text is looked up in that table instead of being
 * evaluated; only text that is not in the table (a schema the build never saw)
 * falls back to eval, which works where no CSP forbids it (a file:// export).
 */
var realCodegen = require('@protobufjs/codegen/index.js');
var table = require('premortem:codegen-table');

function codegen(functionParams, functionName) {
  var gen = realCodegen(functionParams, functionName);
  function Codegen(formatStringOrScope) {
    if (typeof formatStringOrScope === 'string') {
      gen.apply(null, arguments);
      return Codegen;
    }
    var keys = formatStringOrScope ? Object.keys(formatStringOrScope) : [];
    var factory = table.lookup(gen.toString(), keys);
    if (factory) return factory.apply(null, keys.map(function (k) { return formatStringOrScope[k]; }));
    return gen(formatStringOrScope);
  }
  Codegen.toString = gen.toString;
  return Codegen;
}
codegen.verbose = false;
module.exports = codegen;
