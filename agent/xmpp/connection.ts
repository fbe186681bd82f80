/**
 * One XMPP connection: a socket plus the XML stream on it. Opens and restarts the stream
 * (after STARTTLS and SASL, RFC 6120 §4.3.3), hands out elements either to a negotiation step
 * that awaits them (`next()`) or, once negotiation is over, to a handler (`setHandler()`).
 * Closes cleanly (</stream:stream>) or abruptly; reports exactly one `close`.
 */
import { EventEmitter } from "node:events";
import type net from "node:net";
import type tls from "node:tls";
import { Element } from "ltx";
import { AgentError } from "../core/errors.js";
import { NS_STREAM, XmlStreamParser, type XmlStreamLimits } from "./xml-stream.js";

export const NS_CLIENT = "jabber:client";
export const NS_STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams";

export class ConnectionError extends AgentError {}

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

  constructor(
    private socket: net.Socket | tls.TLSSocket,
    readonly domain: string,
    private readonly limits: XmlStreamLimits,
  ) {
    super();
    this.attach(socket);
  }

  get secure(): boolean {
    return "encrypted" in this.socket && (this.socket as tls.TLSSocket).encrypted === true;
  }

  get tlsSocket(): tls.TLSSocket | undefined {
    return this.secure ? (this.socket as tls.TLSSocket) : undefined;
  }

  get rawSocket(): net.Socket {
    return this.socket;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private readonly onData = (chunk: Buffer) => {
    this.emit("activity");
    this.parser.write(chunk);
  };
  private readonly onSocketClose = () =>
    this.finish(this.closeError ?? new ConnectionError("connection_lost", "connection closed by peer"));
  private readonly onSocketError = (err: Error) => {
    this.closeError ??= new ConnectionError("socket_error", `socket error: ${err.message}`, {}, { cause: err });
  };

  private attach(socket: net.Socket): void {
    socket.on("data", this.onData);
    socket.on("close", this.onSocketClose);
    socket.on("error", this.onSocketError);
  }

  private detach(socket: net.Socket): void {
    socket.off("data", this.onData);
    socket.off("close", this.onSocketClose);
    socket.off("error", this.onSocketError);
  }

  /** Swaps in the TLS socket after STARTTLS; the stream is then restarted by the caller. */
  upgrade(replace: (plain: net.Socket) => Promise<tls.TLSSocket>): Promise<void> {
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

  /** Sends the stream header and waits for the server's header (RFC 6120 §4.2). */
  open(timeoutMs: number): Promise<StreamInfo> {
    this.newParser();
    const header = `<?xml version='1.0'?><stream:stream to='${escapeAttr(this.domain)}' version='1.0' xml:lang='en' xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}'>`;
    return new Promise<StreamInfo>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.streamStart = null;
        reject(new ConnectionError("negotiation_timeout", `no stream header from server within ${timeoutMs} ms`));
      }, timeoutMs);
      this.streamStart = (info) => {
        clearTimeout(timer);
        resolve(info);
      };
      this.pendingOpenReject = (err) => {
        clearTimeout(timer);
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
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(
          new ConnectionError("negotiation_timeout", `server did not answer ${what} within ${timeoutMs} ms`, {
            step: what,
          }),
        );
      }, timeoutMs);
      this.waiter = {
        resolve: (el) => {
          clearTimeout(timer);
          resolve(el);
        },
        reject: (err) => {
          clearTimeout(timer);
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
    const t = setTimeout(() => this.socket.destroy(), graceMs);
    t.unref();
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
