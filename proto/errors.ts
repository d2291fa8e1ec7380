/**
 * Every stable error code premortem gives (thrown with `.code`, sent in Error
 * frames and JSON error bodies, printed by the CLI), with what it means and
 * what to do. One list, in the way `ws` keeps its codes: test/unit/errors.test.ts
 * fails when a code is used in the sources and missing here (or the reverse),
 * and when docs/ERRORS.md (rendered from this list) is out of date
 * (PREMORTEM_UPDATE_DOCS=1 npx jest test/unit/errors.test.ts rewrites it).
 */
export interface ErrorInfo {
  /** Where it comes from. */
  area: 'kernel' | 'native' | 'store' | 'server' | 'stream' | 'protocol' | 'python' | 'cli' | 'agent';
  means: string;
  action: string;
}

export const ERROR_CODES = {
  // ---- the kernel and the native tracer
  PREMORTEM_ERR_NO_BTF: { area: 'kernel', means: 'the kernel exposes no BTF (/sys/kernel/btf/vmlinux): CO-RE programs cannot be loaded', action: 'run a kernel built with CONFIG_DEBUG_INFO_BTF=y (every major distribution since 2021); `premortem doctor` checks it' },
  PREMORTEM_ERR_BPF_OPEN: { area: 'native', means: 'a BPF object of a probe could not be opened', action: 'rebuild (`npm run build`) or reinstall the package; the message names the probe' },
  PREMORTEM_ERR_BPF_LOAD: { area: 'kernel', means: 'the kernel refused to load a probe (missing privilege, verifier rejection, missing kernel feature)', action: 'run as root or with CAP_BPF + CAP_PERFMON; the message carries libbpf\'s log with the verifier\'s reason' },
  PREMORTEM_ERR_BPF_ATTACH: { area: 'kernel', means: 'a program loaded but could not be attached to its hook (tracepoint absent, uprobe target gone)', action: 'only that signal is off: `premortem doctor` and /api/health name it; update the kernel for a missing tracepoint' },
  PREMORTEM_ERR_BPF_MAP: { area: 'native', means: 'a BPF map operation failed', action: 'usually transient; if it repeats, report it with the message' },
  PREMORTEM_ERR_RINGBUF: { area: 'native', means: 'the ring buffer could not be created or polled', action: 'check memory limits of the agent (the ring is 8 MiB by default); lower --ring-buffer-bytes' },
  PREMORTEM_ERR_UNKNOWN_PROBE: { area: 'native', means: 'a probe or program name that this build does not have', action: 'check the names in --disable and --probes against `premortem doctor`' },
  PREMORTEM_ERR_NO_PROBE_LOADED: { area: 'native', means: 'no probe could be loaded at all', action: 'see the per-probe errors it lists; usually privileges or BTF' },
  PREMORTEM_ERR_CLOSED: { area: 'native', means: 'the tracer was used after close()', action: 'a programming error in a tool built on the addon: create a new tracer' },
  PREMORTEM_ERR_TRACK_FULL: { area: 'native', means: 'the kernel pid filter is full (8192 processes)', action: 'narrow what is tracked (--match, --cgroup, --exclude) or lower --max-tracked' },
  PREMORTEM_ERR_ARG: { area: 'native', means: 'a bad argument to the native addon', action: 'a programming error in a tool built on the addon: the message says which argument' },
  PREMORTEM_ERR_NOT_BUILT: { area: 'agent', means: 'a built file is missing (the addon or dist/)', action: 'run `npm run build` (a package install has them prebuilt)' },
  PREMORTEM_ERR_PROCESS_GONE: { area: 'agent', means: 'the process exited while it was being read', action: 'nothing: the agent goes on; it is counted' },
  PREMORTEM_ERR_PROCESS_MEMORY: { area: 'agent', means: 'another process\'s memory could not be read', action: 'usually the process changed under the reader; it is counted' },
  PREMORTEM_ERR_PROCESS_MEMORY_DENIED: { area: 'agent', means: 'reading another process\'s memory was refused (Python stacks)', action: 'give the agent CAP_SYS_PTRACE (the unit and the DaemonSet do); check Yama ptrace_scope' },
  PREMORTEM_ERR_RECORD_FORMAT: { area: 'native', means: 'a batch of kernel records did not decode (a record ran past the batch)', action: 'the batch is dropped and counted; a mismatch of agent and addon versions causes it: rebuild or reinstall' },
  // ---- Python interpreters
  PREMORTEM_ERR_NOT_PYTHON: { area: 'python', means: 'the process does not run a CPython interpreter the agent can read', action: 'nothing: its GC probes and stacks are off; doctor says why' },
  PREMORTEM_ERR_ELF: { area: 'python', means: 'an interpreter binary could not be parsed as ELF', action: 'nothing: that interpreter gets no GC probes or stacks; report the binary if it is a real CPython' },
  PREMORTEM_ERR_ELF_OPEN: { area: 'python', means: 'an interpreter binary could not be opened (through /proc/PID/root)', action: 'give the agent CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE (container roots)' },
  PREMORTEM_ERR_PYTHON_VERSION: { area: 'python', means: 'a CPython version whose structures the stack reader does not know (3.9-3.13 are supported)', action: 'stacks are off for it; GC pauses still work where its symbols allow' },
  PREMORTEM_ERR_PYSTACK: { area: 'python', means: 'a Python stack could not be read this time (the interpreter was mid-change)', action: 'nothing: the next sample usually works' },
  PREMORTEM_ERR_PYSTACK_UNREADABLE: { area: 'python', means: 'the interpreter\'s runtime state could not be found in the process', action: 'stacks are off for that process (stripped or unusual build); doctor says so' },
  // ---- the store
  PREMORTEM_ERR_STORE: { area: 'store', means: 'a post-mortem could not be written (the cause is in the message)', action: 'see the store\'s error in /api/health; tracing goes on' },
  PREMORTEM_ERR_STORE_IO: { area: 'store', means: 'reading or writing the data directory failed', action: 'check the disk and the data directory (--data-dir, PREMORTEM_DATA_DIR)' },
  PREMORTEM_ERR_STORE_NO_SPACE: { area: 'store', means: 'the disk holding the data directory is full', action: 'free space or lower --quota-mb; tracing goes on and the error is counted' },
  PREMORTEM_ERR_STORE_READ_ONLY: { area: 'store', means: 'a write to a read-only store (a read-only mount, or a read command)', action: 'fix the mount or permissions, or choose another --data-dir' },
  PREMORTEM_ERR_STORE_NOT_FOUND: { area: 'store', means: 'the data directory does not exist (read commands never create it)', action: 'pass the directory the agent writes to (--data-dir or PREMORTEM_DATA_DIR)' },
  PREMORTEM_ERR_STORE_UNREADABLE: { area: 'store', means: 'the data directory cannot be read (permissions, or not a directory)', action: 'run as a user that can read it (bundles are 0600 in a 0700 directory), or fix the path' },
  PREMORTEM_ERR_STORE_BUSY: { area: 'store', means: 'too many writes are waiting', action: 'deaths arrive faster than the disk takes them; the excess is refused and counted' },
  PREMORTEM_ERR_STORE_CLOSED: { area: 'store', means: 'the store was used after close()', action: 'a programming error in a tool built on the store' },
  PREMORTEM_ERR_BUNDLE: { area: 'store', means: 'a post-mortem could not be read', action: 'see the message; `premortem list` shows what is there' },
  PREMORTEM_ERR_BUNDLE_BAD_ID: { area: 'store', means: 'not a post-mortem id', action: 'take ids from `premortem list`' },
  PREMORTEM_ERR_BUNDLE_NOT_FOUND: { area: 'store', means: 'no post-mortem with that id', action: 'it may have been evicted by the quota or retention; `premortem list` shows what is there' },
  PREMORTEM_ERR_BUNDLE_CORRUPT: { area: 'store', means: 'a post-mortem file is truncated or its checksum disagrees', action: 'it is never served and is evicted first; a disk problem causes it' },
  PREMORTEM_ERR_BUNDLE_INVALID: { area: 'store', means: 'a bundle to write is not a valid post-mortem', action: 'a programming error: the message says which field' },
  PREMORTEM_ERR_BUNDLE_TOO_LARGE: { area: 'store', means: 'one post-mortem is larger than the whole quota', action: 'raise --quota-mb or shorten --bundle-window-s' },
  // ---- the HTTP server and the server process
  PREMORTEM_ERR_UNAUTHORIZED: { area: 'server', means: 'a request without the token to an agent bound off loopback', action: 'send `Authorization: Bearer <token>` (or ?token= once in a browser)' },
  PREMORTEM_ERR_FORBIDDEN: { area: 'server', means: 'a foreign Origin, or a Host that is not this agent (DNS rebinding)', action: 'open the viewer from the agent\'s own address; add other origins with allowedOrigins' },
  PREMORTEM_ERR_NOT_FOUND: { area: 'server', means: 'no such route or file', action: 'the API is under /api/, the stream at /ws, metrics at /metrics' },
  PREMORTEM_ERR_METHOD: { area: 'server', means: 'an HTTP method other than GET or HEAD', action: 'the API is read-only' },
  PREMORTEM_ERR_BAD_PATH: { area: 'server', means: 'a request target that is not a valid path', action: 'fix the URL' },
  PREMORTEM_ERR_BAD_REQUEST: { area: 'server', means: 'a request it cannot serve: a bad parameter (window_s of /api/workers/:worker/why), or an unknown request from the server process', action: 'fix the parameter as the message says; report any other with the message' },
  PREMORTEM_ERR_INTERNAL: { area: 'server', means: 'an unexpected error while answering', action: 'the agent goes on; report it with the agent\'s log' },
  PREMORTEM_ERR_NO_STORE: { area: 'server', means: 'this agent keeps no post-mortem store', action: 'run it with a writable --data-dir' },
  PREMORTEM_ERR_NO_VIEWER: { area: 'server', means: 'the viewer is not built', action: 'run `npm run build` (a package install has it)' },
  PREMORTEM_ERR_AGENT_TIMEOUT: { area: 'server', means: 'the server process got no answer from the agent in time', action: 'the agent is busy or stuck; /api/health says which' },
  PREMORTEM_ERR_BUSY: { area: 'server', means: 'too many requests in flight (history answers are rate-limited)', action: 'retry shortly; the viewer does so by itself' },
  // ---- the live stream
  PREMORTEM_ERR_TEXT_FRAME: { area: 'stream', means: 'a text WebSocket frame: the stream speaks binary protobuf only', action: 'send ClientMessage frames (proto/premortem.proto)' },
  PREMORTEM_ERR_MALFORMED: { area: 'stream', means: 'a frame that is not a valid ClientMessage', action: 'the connection is closed (1007); fix the client' },
  PREMORTEM_ERR_EMPTY_MESSAGE: { area: 'stream', means: 'a ClientMessage with no request in it', action: 'send subscribe, unsubscribe or historyRequest' },
  PREMORTEM_ERR_SUBSCRIPTION: { area: 'stream', means: 'subscriptions refused (bad worker key, bad service id, or over the bound)', action: 'worker keys are "pid:start_ticks"; at most 10,000 subscriptions per viewer' },
  PREMORTEM_ERR_BAD_WORKER_KEY: { area: 'stream', means: 'a history request for a key that is not "pid:start_ticks"', action: 'take keys from the Snapshot' },
  PREMORTEM_ERR_NO_HISTORY: { area: 'stream', means: 'this agent keeps no history', action: 'nothing to do: the live stream still works' },
  PREMORTEM_ERR_HISTORY: { area: 'stream', means: 'a history request failed', action: 'see the message; retry' },
  // ---- the protocol and the codec
  PREMORTEM_ERR_CLIENT_TOO_OLD: { area: 'protocol', means: 'the viewer speaks an older protocol than this agent serves', action: 'reload the viewer from the agent (it serves its own)' },
  PREMORTEM_ERR_CLIENT_TOO_NEW: { area: 'protocol', means: 'the viewer speaks a newer protocol than this agent', action: 'upgrade the agent, or use the viewer it serves' },
  PREMORTEM_ERR_PROTO_DECODE: { area: 'protocol', means: 'bytes that are not a valid message of the expected type', action: 'a truncated or foreign file or frame; check what was opened' },
  PREMORTEM_ERR_PROTO_ENCODE: { area: 'protocol', means: 'a value that cannot be encoded (wrong type, unknown enum)', action: 'a programming error: the message names the field' },
  PREMORTEM_ERR_PROTO_SCHEMA: { area: 'protocol', means: 'proto/premortem.proto is missing or does not parse', action: 'reinstall, or set PREMORTEM_PROTO to the file' },
  // ---- the command line
  PREMORTEM_ERR_USAGE: { area: 'cli', means: 'a usage error: unknown command or flag, a bad value', action: 'the message names the flag; `premortem <command> --help` lists them (exit status 2)' },
} as const satisfies Record<string, ErrorInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;
