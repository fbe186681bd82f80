/**
 * A TCP proxy on 127.0.0.1 that breaks links on purpose, in front of a real server.
 *
 * - reset():      RST both sides of every current connection (the client sees ECONNRESET, the
 *                 server sees its peer vanish) -- a NAT timeout or a cable pull with a reset.
 * - blackhole(on): keep sockets open but silently discard bytes both ways -- a dead Wi-Fi link
 *                 where TCP has not noticed anything yet (only keepalives/acks can detect it).
 * - refuse(on):   stop listening, so new connections get ECONNREFUSED (server down); the port is
 *                 re-bound when turned off.
 * - inject():     write raw bytes to the client side (malformed XML, oversized stanzas).
 * - latencyMs / setLatency(ms): one-way delay added to every chunk in each direction, so a local
 *                 server behaves like one across a slow link; chunks stay in order (a FIFO per
 *                 direction). The TCP handshake with the proxy is local and is NOT delayed: whoever
 *                 models a connection's time adds one round trip for it.
 *
 * Round trips are counted as "flights": a flight starts when bytes flow in one direction after
 * they last flowed the other way (or are the first bytes of a connection). A client->server flight
 * after a server->client one means the client had to hear from the server before going on.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { registerTeardown } from "./cleanup.js";
import { HarnessError } from "./errors.js";

export interface ProxyOptions {
  targetHost?: string;
  targetPort: number;
  /** Listen port; default a free one. */
  port?: number;
  /** One-way delay per direction, ms; default 0 (chunks forwarded as they arrive). */
  latencyMs?: number;
}

export interface ProxyCounters {
  /** Connections accepted since start. */
  connections: number;
  /** Connections currently open. */
  active: number;
  bytesToServer: number;
  bytesToClient: number;
  /** Bytes discarded while blackholed. */
  bytesDropped: number;
  /** Connections destroyed by reset(). */
  resets: number;
  /** Flights client->server, over all connections (see the file comment). */
  flightsToServer: number;
  /** Flights server->client, over all connections. */
  flightsToClient: number;
}

export type FlightDirection = "c2s" | "s2c";

export interface Flight {
  dir: FlightDirection;
  /** Bytes the sender wrote during this flight (counted on arrival at the proxy, before any delay). */
  bytes: number;
  /** performance.now() of the flight's first byte arriving at the proxy (same clock as the caller's). */
  atMs: number;
}

export interface ConnectionLogEntry {
  /** 1-based, in accept order (the value of counters.connections right after the accept). */
  id: number;
  /** performance.now() at accept. */
  openedAtMs: number;
  flights: Flight[];
  /** Flights beyond MAX_FLIGHTS_PER_CONNECTION, counted but not kept. */
  flightsNotKept: number;
}

/** Bounds the log: a throughput test on one connection makes thousands of flights. */
const MAX_LOGGED_CONNECTIONS = 256;
const MAX_FLIGHTS_PER_CONNECTION = 2048;
/** How long a closing link may take to hand its last bytes on before it is destroyed anyway. */
const CLOSE_FLUSH_MS = 2000;

type PipeItem = { kind: "data"; chunk: Buffer } | { kind: "end" } | { kind: "close" };

/**
 * One direction of a link with an optional delay. Items leave in arrival order even when the
 * latency changes in between (a lowered latency does not let a later chunk overtake an earlier
 * one), and with no delay and nothing queued an item is delivered synchronously, as before
 * latency existed.
 */
class DelayPipe {
  private readonly queue: Array<{ dueMs: number; item: PipeItem }> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly latencyMs: () => number,
    private readonly deliver: (item: PipeItem) => void,
  ) {}

  push(item: PipeItem): void {
    const latency = this.latencyMs();
    if (latency <= 0 && this.queue.length === 0) {
      this.deliver(item);
      return;
    }
    this.queue.push({ dueMs: performance.now() + latency, item });
    this.arm();
  }

  /** Drops queued data (not end/close markers); returns the bytes dropped. */
  dropData(): number {
    let bytes = 0;
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const item = this.queue[i]!.item;
      if (item.kind !== "data") continue;
      bytes += item.chunk.length;
      this.queue.splice(i, 1);
    }
    if (this.queue.length === 0) this.disarm();
    return bytes;
  }

  /** Drops everything queued; returns the data bytes dropped. */
  clear(): number {
    const bytes = this.dropData();
    this.queue.length = 0;
    this.disarm();
    return bytes;
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.timer !== undefined || this.queue.length === 0) return;
    const wait = Math.max(0, Math.ceil(this.queue[0]!.dueMs - performance.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, wait);
    // Like the sockets: the peers on both ends keep the process alive, not the proxy.
    this.timer.unref();
  }

  private drain(): void {
    // Node's timer clock has whole-ms resolution, so a timer can fire a fraction of a ms before
    // dueMs by performance.now(); delivering that early is within the delay's own precision.
    const now = performance.now() + 1;
    while (this.queue.length > 0 && this.queue[0]!.dueMs <= now) {
      const { item } = this.queue.shift()!;
      this.deliver(item);
    }
    this.arm();
  }
}

interface Link {
  client: Socket;
  upstream: Socket;
  toServer: DelayPipe;
  toClient: DelayPipe;
  log: ConnectionLogEntry;
  lastDir: FlightDirection | undefined;
}

export interface LinkBreakingProxy {
  readonly host: string;
  readonly port: number;
  readonly counters: Readonly<ProxyCounters>;
  reset(): void;
  blackhole(on: boolean): void;
  refuse(on: boolean): Promise<void>;
  inject(toClient: string | Buffer): number;
  /** Current one-way delay per direction, ms. */
  readonly latencyMs: number;
  /** Applies to chunks arriving from now on; queued ones keep their delivery time. */
  setLatency(ms: number): void;
  /** Flight logs of the last connections (at most 256), oldest first; a copy. */
  connectionLog(): ConnectionLogEntry[];
  /** Resolves when `active` reaches n (e.g. wait for the client to reconnect). */
  waitForActive(n: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

function checkLatency(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0)
    throw new HarnessError("harness.proxy_latency", `proxy latency must be a finite number >= 0, got ${ms}`, { ms });
  return ms;
}

export async function startProxy(opts: ProxyOptions): Promise<LinkBreakingProxy> {
  const targetHost = opts.targetHost ?? "127.0.0.1";
  let latencyMs = checkLatency(opts.latencyMs ?? 0);
  const links = new Set<Link>();
  const logs: ConnectionLogEntry[] = [];
  const counters: ProxyCounters = {
    connections: 0,
    active: 0,
    bytesToServer: 0,
    bytesToClient: 0,
    bytesDropped: 0,
    resets: 0,
    flightsToServer: 0,
    flightsToClient: 0,
  };
  let blackholed = false;
  let server: Server | null = null;
  let port = opts.port ?? 0;

  const onConnection = (client: Socket): void => {
    counters.connections++;
    const upstream = tcpConnect({ host: targetHost, port: opts.targetPort });
    const log: ConnectionLogEntry = {
      id: counters.connections,
      openedAtMs: performance.now(),
      flights: [],
      flightsNotKept: 0,
    };
    logs.push(log);
    if (logs.length > MAX_LOGGED_CONNECTIONS) logs.shift();
    const latency = (): number => latencyMs;
    // A close travels behind the data sent before it, as a FIN would: a server's last words (a
    // stream error) still reach the client. Data the other way is moot once one side is gone.
    const toServer = new DelayPipe(latency, (item) => {
      if (item.kind === "close") closeAfterFlush(upstream);
      else if (upstream.destroyed) return;
      else if (item.kind === "end") upstream.end();
      else {
        counters.bytesToServer += item.chunk.length;
        upstream.write(item.chunk);
      }
    });
    const toClient = new DelayPipe(latency, (item) => {
      if (item.kind === "close") closeAfterFlush(client);
      else if (client.destroyed) return;
      else if (item.kind === "end") client.end();
      else {
        counters.bytesToClient += item.chunk.length;
        client.write(item.chunk);
      }
    });
    const link: Link = { client, upstream, toServer, toClient, log, lastDir: undefined };
    links.add(link);
    counters.active = links.size;
    // The harness never keeps a test process alive by itself; the peers on both ends hold refs.
    client.unref();
    upstream.unref();
    // A router forwards each packet as it comes. With Nagle on, a delayed chunk written while the
    // one before it is still unacked would wait for the peer's delayed ACK (40 ms on Linux): a
    // delay of the proxy's own, not the endpoints'.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const close = (): void => {
      if (!links.delete(link)) return;
      counters.active = links.size;
      toServer.clear();
      toClient.clear();
      client.destroy();
      upstream.destroy();
    };
    // destroy() discards what a socket still buffers (an upstream still connecting, a full send
    // buffer): let the bytes that came before the close out first, but not for ever (a peer that
    // stopped reading would keep the link, and `active`, up).
    const closeAfterFlush = (dest: Socket): void => {
      if (dest.destroyed || (dest.writableLength === 0 && !dest.connecting)) {
        close();
        return;
      }
      dest.end(close);
      setTimeout(close, CLOSE_FLUSH_MS).unref();
    };
    const flight = (dir: FlightDirection, bytes: number): void => {
      if (link.lastDir !== dir) {
        link.lastDir = dir;
        if (dir === "c2s") counters.flightsToServer++;
        else counters.flightsToClient++;
        if (log.flights.length < MAX_FLIGHTS_PER_CONNECTION)
          log.flights.push({ dir, bytes: 0, atMs: performance.now() });
        else log.flightsNotKept++;
      }
      const last = log.flights.at(-1);
      if (last !== undefined && log.flightsNotKept === 0) last.bytes += bytes;
    };
    client.on("data", (d: Buffer) => {
      if (blackholed) {
        counters.bytesDropped += d.length;
        return;
      }
      flight("c2s", d.length);
      toServer.push({ kind: "data", chunk: d });
    });
    upstream.on("data", (d: Buffer) => {
      if (blackholed) {
        counters.bytesDropped += d.length;
        return;
      }
      flight("s2c", d.length);
      toClient.push({ kind: "data", chunk: d });
    });
    // A clean FIN on one side is passed on as a FIN, so the other side sees an orderly close.
    client.on("end", () => toServer.push({ kind: "end" }));
    upstream.on("end", () => toClient.push({ kind: "end" }));
    client.on("close", () => toServer.push({ kind: "close" }));
    upstream.on("close", () => toClient.push({ kind: "close" }));
    // Errors (ECONNRESET, ECONNREFUSED upstream) just end the link; the test observes the effect.
    client.on("error", close);
    upstream.on("error", close);
  };

  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = createServer(onConnection);
      s.unref();
      s.once("error", reject);
      s.listen({ host: "127.0.0.1", port, exclusive: true }, () => {
        const address = s.address();
        if (address === null || typeof address === "string") {
          reject(new HarnessError("harness.proxy_listen", "proxy has no TCP address"));
          return;
        }
        port = address.port;
        server = s;
        resolve();
      });
    });

  const closeListener = (): Promise<void> => {
    const s = server;
    server = null;
    if (s === null) return Promise.resolve();
    // server.close's callback waits for open connections; we only need the listening socket gone.
    return new Promise((resolve) => {
      s.close();
      setImmediate(resolve);
    });
  };

  const reset = (): void => {
    for (const link of [...links]) {
      links.delete(link);
      counters.resets++;
      // What was still on its way dies with the link, as it would on a real one.
      counters.bytesDropped += link.toServer.clear() + link.toClient.clear();
      link.client.resetAndDestroy();
      link.upstream.resetAndDestroy();
    }
    counters.active = links.size;
  };

  await listen();
  const stop = async (): Promise<void> => {
    unregister();
    reset();
    await closeListener();
  };
  const unregister = registerTeardown({ name: `proxy 127.0.0.1:${port}`, stop });

  return {
    host: "127.0.0.1",
    get port() {
      return port;
    },
    counters,
    reset,
    blackhole(on) {
      blackholed = on;
      if (on) for (const link of links) counters.bytesDropped += link.toServer.dropData() + link.toClient.dropData();
    },
    async refuse(on) {
      if (on) await closeListener();
      else if (server === null) await listen();
    },
    inject(toClient) {
      let n = 0;
      for (const link of links) {
        link.client.write(toClient);
        n++;
      }
      return n;
    },
    get latencyMs() {
      return latencyMs;
    },
    setLatency(ms) {
      latencyMs = checkLatency(ms);
    },
    connectionLog() {
      return logs.map((l) => ({ ...l, flights: l.flights.map((f) => ({ ...f })) }));
    },
    async waitForActive(n, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (counters.active !== n) {
        if (Date.now() > deadline) {
          throw new HarnessError("harness.proxy_wait", `proxy: ${counters.active} active connections, wanted ${n}`, {
            ...counters,
          });
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    stop,
  };
}
