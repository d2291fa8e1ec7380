/**
 * The python room: what premortem reads from CPython interpreters.
 *
 *   const interpreters = createInterpreterCache();          // shared: one read per binary
 *   const gc = createPythonGc({ tracer, log, interpreters }); // GC pauses: usdt | uprobe | none
 *   gc.attachFor(pid); gc.features(); gc.close();
 *   const stacks = createStackSampler({ interpreters });       // Python stacks from outside
 *   stacks.sample(pid);                                         // PyStackSample, never throws
 *   scanPythonInterpreters();                                   // the host's pythons (doctor)
 */
export { createInterpreterCache, versionString } from './interpreter';
export type { InterpreterCache, PythonBinary, PythonProcess, PyVersion } from './interpreter';
export { createPythonGc, PYTHON_GC_LIMITS } from './gc';
export type { GcMethod, GcTarget, PythonGc, PythonGcOptions } from './gc';
export { createStackSampler, STACK_LIMITS } from './stacks';
export type { StackSampler, StackSamplerOptions, StackSamplerStats } from './stacks';
export type { PyFrame, PyThread, PyStackSample } from './stack-types';
export { scanPythonInterpreters } from './scan';
export type { PythonInterpreter } from './scan';
