/**
 * One XMPP connection: a socket plus the XML stream on it. Opens and restarts the stream
 * (after STARTTLS and SASL, RFC 6120 §4.3.3), hands out elements either to a negotiation step
 * that awaits them (`next()`) or, once negotiation is over, to a handler (`setHandler()`).
 * Closes cleanly (</stream:stream>) or abruptly; reports exactly one `close`.
 *
 * Its deadlines run on the injected `Timers`, and the socket is any Duplex (a TCP or TLS socket,
 * or xmpp/testing's in-memory link), so a whole session can run on fake time in-process.
 */
import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { Element } from "ltx";
import { AgentError } from "../kernel/errors.js";
import { realTimers, type TimerHandle, type Timers } from "../kernel/timers.js";
import { type TlsChannel, type TlsOptions, startTls } from "./transport.js";
import { NS_STREAM, XmlStreamParser, type XmlStreamLimits } from "./xml-stream.js";

export const NS_CLIENT = "jabber:client";
export const NS_STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams";

export class ConnectionError extends AgentError {}

/**
 * What a connection runs on: a TCP socket, a TLS socket (`encrypted`, with the channel data SCRAM
 * -PLUS binds to), or an in-memory link in tests.
 */
export type Link = Duplex & { encrypted?: boolean } & Partial<TlsChannel>;

/** STARTTLS's socket swap: the plain link in, the encrypted one out. */
export type TlsUpgrade = (plain: Link, opts: TlsOptions, timeoutMs: number) => Promise<Link>;

export interface ConnectionOptions {
  /** Deadlines of open()/next() and the close grace. Default: real time. */
  timers?: Timers;
  /** How startTls() encrypts the link. Default: a TLS handshake (transport.ts). */
  tlsUpgrade?: TlsUpgrade;
  /** The server endpoint this link reached (for affinity on the next connection). */
  remote?: { host: string; port: number };
}

export interface ConnectionEvents {
  close: [err: AgentError | undefined];
  /** Raw inbound activity (any bytes), for liveness. */
  activity: [];
}

export interface StreamInfo {
  id: string | undefined;
  from: string | undefined;
  version: string | undefined;
}

/** Reads a <stream:error/>: its condition and text. */
export function streamErrorOf(el: Element): { condition: string; text: string | undefined } {
  let condition = "undefined-condition";
  let text: string | undefined;
  for (const c of el.children) {
    if (typeof c === "string") continue;
    if (c.name === "text") text = c.text();
    else if (c.attrs.xmlns === NS_STREAM_ERRORS) condition = c.name;
  }
  return { condition, text };
}

export class Connection extends EventEmitter<ConnectionEvents> {
  private parser!: XmlStreamParser;
  private readonly backlog: Element[] = [];
  private waiter: { resolve(el: Element): void; reject(err: Error): void } | null = null;
  private handler: ((el: Element) => void) | null = null;
  private closed = false;
  private closeError: AgentError | undefined;
  private streamStart: ((info: StreamInfo) => void) | null = null;
  private readonly timers: Timers;
  private readonly tlsUpgrade: TlsUpgrade;
  private graceTimer: TimerHandle | undefined;

  /** The server endpoint reached, when the connector said (undefined for in-memory links). */
  readonly remote: { host: string; port: number } | undefined;

  constructor(
    private socket: Link,
    readonly domain: string,
    private readonly limits: XmlStreamLimits,
    options: ConnectionOptions = {},
  ) {
    super();
    this.remote = options.remote;
    this.timers = options.timers ?? realTimers;
    this.tlsUpgrade = options.tlsUpgrade ?? startTls;
    this.attach(socket);
  }

  get secure(): boolean {
    return this.socket.encrypted === true;
  }

  /** The TLS channel (protocol, cipher, channel-binding data) once the link is encrypted. */
  get tlsSocket(): TlsChannel | undefined {
    return this.secure ? (this.socket as Link & TlsChannel) : undefined;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private readonly onData = (chunk: Buffer) => {
    this.emit("activity");
    this.parser.write(chunk);
  };
  private readonly onSocketClose = () => {
    this.graceTimer?.cancel();
    this.graceTimer = undefined;
    this.finish(this.closeError ?? new ConnectionError("connection_lost", "connection closed by peer"));
  };
  private readonly onSocketError = (err: Error) => {
    this.closeError ??= new ConnectionError("socket_error", `socket error: ${err.message}`, {}, { cause: err });
  };

  private attach(socket: Link): void {
    socket.on("data", this.onData);
    socket.on("close", this.onSocketClose);
    socket.on("error", this.onSocketError);
  }

  private detach(socket: Link): void {
    socket.off("data", this.onData);
    socket.off("close", this.onSocketClose);
    socket.off("error", this.onSocketError);
  }

  /** STARTTLS after the server's <proceed/>: encrypts the link; the caller then restarts the stream. */
  startTls(opts: TlsOptions, timeoutMs: number): Promise<void> {
    return this.upgrade((plain) => this.tlsUpgrade(plain, opts, timeoutMs));
  }

  /** Swaps in the TLS socket after STARTTLS; the stream is then restarted by the caller. */
  upgrade(replace: (plain: Link) => Promise<Link>): Promise<void> {
    const plain = this.socket;
    this.detach(plain);
    return replace(plain).then(
      (secure) => {
        this.socket = secure;
        this.attach(secure);
      },
      (err: unknown) => {
        this.attach(plain);
        throw err;
      },
    );
  }

  /**
   * Sends the stream header and waits for the server's header (RFC 6120 §4.2). `from` (our bare
   * JID) goes out only on an encrypted link (RFC 6120 §4.7.1): a server that offers XEP-0484 FAST
   * needs it to know whose tokens to offer.
   */
  open(timeoutMs: number, from?: string): Promise<StreamInfo> {
    this.newParser();
    const fromAttr = from !== undefined && this.secure ? ` from='${escapeAttr(from)}'` : "";
    const header = `<?xml version='1.0'?><stream:stream to='${escapeAttr(this.domain)}'${fromAttr} version='1.0' xml:lang='en' xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}'>`;
    return new Promise<StreamInfo>((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        this.streamStart = null;
        this.pendingOpenReject = null;
        reject(new ConnectionError("negotiation_timeout", `no stream header from server within ${timeoutMs} ms`));
      }, timeoutMs);
      this.streamStart = (info) => {
        timer.cancel();
        resolve(info);
      };
      this.pendingOpenReject = (err) => {
        timer.cancel();
        reject(err);
      };
      this.writeRaw(header);
    });
  }
  private pendingOpenReject: ((err: Error) => void) | null = null;

  private newParser(): void {
    this.parser?.removeAllListeners();
    this.parser = new XmlStreamParser(this.limits);
    this.parser.on("streamStart", (attrs) => {
      const cb = this.streamStart;
      this.streamStart = null;
      this.pendingOpenReject = null;
      cb?.({ id: attrs.id, from: attrs.from, version: attrs.version });
    });
    this.parser.on("element", (el) => this.deliver(el));
    this.parser.on("streamEnd", () => {
      this.closeError ??= new ConnectionError("stream_closed", "server closed the stream");
      // Answer the close (RFC 6120 §4.4), then let the socket go.
      this.writeRaw("</stream:stream>");
      this.socket.end();
      this.finish(this.closeError);
    });
    this.parser.on("invalid", (err) => {
      // RFC 6120 §4.9.3 would have us send <not-well-formed/> or <policy-violation/>, but a stream
      // error makes the server discard the session, and with it everything it still holds for
      // us. Dropping the TCP connection instead lets the server hibernate the session (XEP-0198)
      // so the agent resumes and loses nothing; the session skips the offending stanza.
      this.destroy(err);
    });
  }

  private deliver(el: Element): void {
    if (el.name === "stream:error") {
      const { condition, text } = streamErrorOf(el);
      this.closeError = new ConnectionError(
        "stream_error",
        `stream error from server: ${condition}${text ? ` (${text})` : ""}`,
        {
          condition,
          ...(text ? { text } : {}),
        },
      );
      this.socket.end();
      this.finish(this.closeError);
      return;
    }
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(el);
    } else if (this.handler) {
      this.handler(el);
    } else {
      this.backlog.push(el);
    }
  }

  /** Next element during negotiation, with a deadline. */
  next(timeoutMs: number, what: string): Promise<Element> {
    const queued = this.backlog.shift();
    if (queued) return Promise.resolve(queued);
    if (this.closed)
      return Promise.reject(this.closeError ?? new ConnectionError("connection_lost", "connection closed"));
    return new Promise<Element>((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        this.waiter = null;
        reject(
          new ConnectionError("negotiation_timeout", `server did not answer ${what} within ${timeoutMs} ms`, {
            step: what,
          }),
        );
      }, timeoutMs);
      this.waiter = {
        resolve: (el) => {
          timer.cancel();
          resolve(el);
        },
        reject: (err) => {
          timer.cancel();
          reject(err);
        },
      };
    });
  }

  /** From now on every element goes to `fn` (first the ones that arrived meanwhile). */
  setHandler(fn: (el: Element) => void): void {
    this.handler = fn;
    while (this.backlog.length > 0 && this.handler === fn) fn(this.backlog.shift()!);
  }

  send(el: Element): void {
    this.writeRaw(el.toString());
  }

  writeRaw(data: string): void {
    if (this.closed || this.socket.destroyed) return;
    this.socket.write(data);
  }

  /** Bytes waiting in the socket's buffer: the flow-control signal for bulk senders. */
  get writableLength(): number {
    return this.socket.writableLength;
  }

  /** Calls `fn` once when the socket's buffer has drained. */
  onceDrain(fn: () => void): void {
    this.socket.once("drain", fn);
  }

  sendStreamError(condition: string, text?: string): void {
    const err = new Element("stream:error");
    err.c(condition, { xmlns: NS_STREAM_ERRORS });
    if (text) err.c("text", { xmlns: NS_STREAM_ERRORS }).t(text);
    this.writeRaw(err.toString());
    this.writeRaw("</stream:stream>");
    this.socket.end();
  }

  /** Polite close: </stream:stream>, then the socket is ended; destroyed if the peer lingers. */
  close(graceMs = 1000): void {
    if (this.closed) return;
    this.closeError ??= new ConnectionError("closed_locally", "connection closed by the agent");
    this.writeRaw("</stream:stream>");
    this.socket.end();
    // Cancelled when the socket closes, so a peer that answers in time leaves no timer behind.
    this.graceTimer = this.timers.setTimeout(() => {
      this.graceTimer = undefined;
      this.socket.destroy();
    }, graceMs);
    this.finish(this.closeError);
  }

  /** Abrupt close, for a link declared dead. */
  destroy(err: AgentError): void {
    this.closeError ??= err;
    this.socket.destroy();
    this.finish(err);
  }

  private finish(err: AgentError | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.parser?.removeAllListeners();
    const failure = err ?? new ConnectionError("connection_lost", "connection closed");
    this.waiter?.reject(failure);
    this.waiter = null;
    this.pendingOpenReject?.(failure);
    this.pendingOpenReject = null;
    this.handler = null;
    this.emit("close", err);
  }
}

function escapeAttr(s: string): string {
  return s.replace(/[&<>'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
