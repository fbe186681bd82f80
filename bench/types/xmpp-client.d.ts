/**
 * Just enough of @xmpp/client 0.14 for the session benchmark. The package ships no types of its own
 * (and its stream-management typings elsewhere describe an older API), so these are written from
 * its 0.14.0 source: client/index.js, connection/index.js, stream-management/index.js, reconnect/index.js.
 */
declare module "@xmpp/client" {
  import type { EventEmitter } from "node:events";
  import type { Element } from "ltx";

  export function xml(
    name: string,
    attrs?: Record<string, string | number | undefined> | null,
    ...children: (Element | string)[]
  ): Element;

  /** `ack` / `fail` are emitted once per stanza with that stanza; `resumed` after <resumed/>. */
  export interface StreamManagement extends EventEmitter {
    enabled: boolean;
    id: string;
    /** Stanzas the server acknowledged so far in this SM session. */
    outbound: number;
    inbound: number;
    /** Unacknowledged outbound stanzas (unbounded). */
    outbound_q: { stanza: Element; stamp: string }[];
    requestAckDebounce: number;
  }

  /** Emits `reconnecting` before each attempt, `reconnected` after the stream is open. */
  export interface Reconnect extends EventEmitter {
    /** Fixed delay before each reconnect attempt, ms (default 1000). */
    delay: number;
  }

  export interface XmppClient extends EventEmitter {
    status: string;
    streamManagement: StreamManagement;
    reconnect: Reconnect;
    start(): Promise<unknown>;
    stop(): Promise<unknown>;
    send(element: Element): Promise<void>;
  }

  export interface ClientOptions {
    service: string;
    domain?: string;
    username?: string;
    password?: string;
    resource?: string;
  }

  export function client(options: ClientOptions): XmppClient;
}
