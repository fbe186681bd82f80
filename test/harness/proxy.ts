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
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { registerTeardown } from "./cleanup.js";
import { HarnessError } from "./errors.js";

export interface ProxyOptions {
  targetHost?: string;
  targetPort: number;
  /** Listen port; default a free one. */
  port?: number;
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
}

interface Link {
  client: Socket;
  upstream: Socket;
}

export interface LinkBreakingProxy {
  readonly host: string;
  readonly port: number;
  readonly counters: Readonly<ProxyCounters>;
  reset(): void;
  blackhole(on: boolean): void;
  refuse(on: boolean): Promise<void>;
  inject(toClient: string | Buffer): number;
  /** Resolves when `active` reaches n (e.g. wait for the client to reconnect). */
  waitForActive(n: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startProxy(opts: ProxyOptions): Promise<LinkBreakingProxy> {
  const targetHost = opts.targetHost ?? "127.0.0.1";
  const links = new Set<Link>();
  const counters: ProxyCounters = {
    connections: 0,
    active: 0,
    bytesToServer: 0,
    bytesToClient: 0,
    bytesDropped: 0,
    resets: 0,
  };
  let blackholed = false;
  let server: Server | null = null;
  let port = opts.port ?? 0;

  const onConnection = (client: Socket): void => {
    counters.connections++;
    const upstream = tcpConnect({ host: targetHost, port: opts.targetPort });
    const link: Link = { client, upstream };
    links.add(link);
    counters.active = links.size;
    // The harness never keeps a test process alive by itself; the peers on both ends hold refs.
    client.unref();
    upstream.unref();
    const close = (): void => {
      if (!links.delete(link)) return;
      counters.active = links.size;
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (d: Buffer) => {
      if (blackholed) {
        counters.bytesDropped += d.length;
        return;
      }
      counters.bytesToServer += d.length;
      upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      if (blackholed) {
        counters.bytesDropped += d.length;
        return;
      }
      counters.bytesToClient += d.length;
      client.write(d);
    });
    // A clean FIN on one side is passed on as a FIN, so the other side sees an orderly close.
    client.on("end", () => upstream.end());
    upstream.on("end", () => client.end());
    client.on("close", close);
    upstream.on("close", close);
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
