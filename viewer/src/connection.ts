/**
 * The WebSocket to the agent: binary protobuf frames both ways, reconnection
 * with exponential backoff and jitter, and a stop on protocol mismatch (an
 * older or newer agent than this viewer says so in Hello or an Error frame;
 * reconnecting would only repeat the refusal).
 */
import { codec, PROTOCOL_VERSION, checkServerHello, type ServerMessage } from './codec';
import type { ClientMessage, DeepPartial } from '../../proto/codec';

export type ConnState =
  | { kind: 'connecting'; attempt: number }
  | { kind: 'open' }
  | { kind: 'waiting'; attempt: number; retryAtMs: number; reason: string }
  | { kind: 'incompatible'; message: string };

/** Backoff bounds: first retry after BACKOFF_MIN_MS, doubling up to BACKOFF_MAX_MS. */
export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 15_000;
/** Close code the agent sends after an incompatible-protocol Error (agent/server.ts). */
const CLOSE_INCOMPATIBLE_PROTOCOL = 4001;
const VERSION_ERRORS = new Set(['PREMORTEM_ERR_CLIENT_TOO_OLD', 'PREMORTEM_ERR_CLIENT_TOO_NEW']);

export interface ConnectionHandlers {
  onMessage(msg: ServerMessage): void;
  onState(state: ConnState): void;
  /** A frame that could not be decoded (counted, shown; the stream goes on). */
  onDecodeError(message: string): void;
}

export class Connection {
  private ws?: WebSocket;
  private attempt = 0;
  private timer?: number;
  private stopped = false;
  private fatal?: string;
  state: ConnState = { kind: 'connecting', attempt: 0 };

  constructor(private readonly url: string, private readonly handlers: ConnectionHandlers) {}

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.close(1000, 'viewer closed');
  }

  /** Reconnect now (the user clicked "retry"). */
  retryNow(): void {
    if (this.fatal || this.stopped) return;
    clearTimeout(this.timer);
    if (!this.ws || this.ws.readyState === WebSocket.CLOSED) this.connect();
  }

  send(msg: DeepPartial<ClientMessage>): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(codec().encodeClientMessage({ protocolVersion: PROTOCOL_VERSION, ...msg }));
    return true;
  }

  private setState(s: ConnState): void {
    this.state = s;
    this.handlers.onState(s);
  }

  private connect(): void {
    if (this.stopped || this.fatal) return;
    this.attempt++;
    this.setState({ kind: 'connecting', attempt: this.attempt });
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.scheduleRetry(`cannot open ${this.url}: ${(err as Error).message}`);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (!(ev.data instanceof ArrayBuffer)) {
        this.handlers.onDecodeError('the agent sent a text frame; the protocol is binary protobuf');
        return;
      }
      const r = codec().tryDecodeServerMessage(new Uint8Array(ev.data));
      if (!r.ok) {
        this.handlers.onDecodeError(r.error.message);
        return;
      }
      const msg = r.value;
      if (msg.body === 'hello' && msg.hello) {
        const problem = checkServerHello(msg.hello, PROTOCOL_VERSION);
        if (problem) {
          this.fail(problem);
          ws.close(1000, 'incompatible protocol');
          return;
        }
        this.attempt = 0; // a good session: the next outage starts from the shortest wait
        this.setState({ kind: 'open' });
      }
      if (msg.body === 'error' && msg.error && VERSION_ERRORS.has(msg.error.code)) this.fail(msg.error.message);
      this.handlers.onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      if (ev.code === CLOSE_INCOMPATIBLE_PROTOCOL && !this.fatal) this.fail(`the agent refused this viewer's protocol version ${PROTOCOL_VERSION}: ${ev.reason || 'incompatible'}`);
      if (this.fatal || this.stopped) return;
      const why = ev.code === 1006 ? 'connection lost' : `closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`;
      this.scheduleRetry(why);
    };
    ws.onerror = () => { /* onclose follows with the code */ };
  }

  private fail(message: string): void {
    this.fatal = message;
    clearTimeout(this.timer);
    this.setState({ kind: 'incompatible', message });
  }

  private scheduleRetry(reason: string): void {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.max(0, this.attempt - 1));
    const wait = Math.round(base * (0.8 + Math.random() * 0.4));
    this.setState({ kind: 'waiting', attempt: this.attempt, retryAtMs: Date.now() + wait, reason });
    this.timer = window.setTimeout(() => this.connect(), wait);
  }
}
