/**
 * One measured run of bench/reconnect.ts: a fresh login, then a resumption after a proxy reset,
 * with the wall time of each and the round trips read from the proxy's flight log.
 *
 * Round trips: the proxy counts flights (bytes in one direction until the other direction speaks).
 * Each server->client flight that answers a client->server flight is one round trip the client
 * waited for; those are counted on the login's own connection up to the moment the session emits
 * 'online', plus one for TCP's handshake, which the proxy accepts locally and cannot delay.
 * (Counting the client's flights after a server flight, instead, would miss the last answer: the
 * <enabled/> or <resumed/> that makes the session online is followed by no client flight.)
 */
import { Ctx, INVALID } from "../../kernel/schema-dsl.js";
import { withTimeout } from "../../test/harness/cleanup.js";
import type { ProsodyHandle } from "../../test/harness/prosody.js";
import type { ConnectionLogEntry, LinkBreakingProxy } from "../../test/harness/proxy.js";
import { type XmppConfig, xmppConfigSchema } from "../../xmpp/config.js";
import { type SessionState, XmppSession } from "../../xmpp/session.js";
import { BenchError } from "../lib/errors.js";
import type { RawXmppConfig } from "./variants.js";

/** Round trips the proxy cannot see: TCP's SYN / SYN-ACK, answered locally by the proxy. */
export const TCP_HANDSHAKE_ROUND_TRIPS = 1;

export interface PhaseResult {
  /** From start() (fresh) or proxy.reset() (resume) to the 'online' event, as measured. */
  wallMs: number;
  /** wallMs plus one round trip (2 x one-way latency) for the TCP handshake the proxy does not delay. */
  modelledMs: number;
  /** Round trips on the connection that got online, TCP handshake included. */
  roundTrips: number;
  /** Flights (both directions) on that connection up to 'online'. */
  flights: number;
  bytesToServer: number;
  bytesToClient: number;
  /** Connections the proxy accepted for this phase (more than 1: an attempt failed and was retried). */
  connections: number;
  /** The flights counted, as "c2s 123 B @ 4.2 ms" from the phase's start: where the round trips go. */
  flightLog: string[];
}

export interface RunResult {
  fresh: PhaseResult & { mechanism: string | undefined };
  /** waitMs: reset to the start of the resumption attempt (failure noticed + reconnect backoff). */
  resume: PhaseResult & { waitMs: number };
}

/**
 * The bench's fixed part of the session config. Reconnect backoff as short as the schema allows
 * (initialDelayMs min 10, maxDelayMs min 100): the wait is in the resume figure, and reported apart.
 */
export function baseXmppConfig(
  prosody: ProsodyHandle,
  proxy: LinkBreakingProxy,
  user: string,
  password: string,
  resource: string,
): RawXmppConfig {
  if (prosody.caFile === null) throw new BenchError("bench_setup", "the reconnect bench needs Prosody with TLS");
  return {
    jid: `${user}@${prosody.domain}`,
    password,
    server: `${proxy.host}:${proxy.port}`,
    caFile: prosody.caFile,
    resource,
    reconnect: { initialDelayMs: 10, maxDelayMs: 100 },
  };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** `over` wins; nested mappings are merged key by key, anything else (lists too) replaced. */
export function deepMerge(base: RawXmppConfig, over: RawXmppConfig): RawXmppConfig {
  const out: RawXmppConfig = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

export function parseXmppConfig(raw: RawXmppConfig, variant: string): XmppConfig {
  const ctx = new Ctx();
  const config = xmppConfigSchema.parse(raw, ctx);
  if (config === INVALID)
    throw new BenchError("bench_config", `variant ${variant}: bad xmpp config: ${JSON.stringify(ctx.issues)}`, {
      variant,
    });
  return config;
}

/** Round trips and traffic of one connection up to `untilMs` (performance.now() clock). */
export function countRoundTrips(
  conn: ConnectionLogEntry,
  fromMs: number,
  untilMs: number,
): Omit<PhaseResult, "wallMs" | "modelledMs" | "connections"> {
  if (conn.flightsNotKept > 0)
    throw new BenchError("bench_flight_log", `connection ${conn.id}: flight log overflowed`, { id: conn.id });
  const flights = conn.flights.filter((f) => f.atMs <= untilMs);
  let answers = 0;
  let bytesToServer = 0;
  let bytesToClient = 0;
  let clientSpoke = false;
  for (const f of flights) {
    if (f.dir === "c2s") {
      clientSpoke = true;
      bytesToServer += f.bytes;
    } else {
      // A server flight nobody asked for (none is expected before 'online') is no round trip waited for.
      if (clientSpoke) answers++;
      bytesToClient += f.bytes;
    }
  }
  return {
    roundTrips: answers + TCP_HANDSHAKE_ROUND_TRIPS,
    flights: flights.length,
    bytesToServer,
    bytesToClient,
    flightLog: flights.map((f) => `${f.dir} ${f.bytes} B @ ${(f.atMs - fromMs).toFixed(1)} ms`),
  };
}

interface OnlineAt {
  resumed: boolean;
  atMs: number;
}

function nextOnline(session: XmppSession, timeoutMs: number, what: string): Promise<OnlineAt> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      session.off("online", onOnline);
      session.off("fault", onFault);
    };
    const onOnline = (info: { resumed: boolean }): void => {
      const atMs = performance.now();
      done();
      resolve({ resumed: info.resumed, atMs });
    };
    const onFault = (err: Error): void => {
      done();
      reject(new BenchError("bench_login", `${what}: ${err.message}`, {}, { cause: err }));
    };
    const timer = setTimeout(() => {
      done();
      const st = session.stats();
      reject(
        new BenchError("bench_timeout", `${what}: not online within ${timeoutMs} ms`, {
          state: st.state,
          lastError: st.lastError,
        }),
      );
    }, timeoutMs);
    session.on("online", onOnline);
    session.on("fault", onFault);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function phaseConnections(proxy: LinkBreakingProxy, after: number, what: string): ConnectionLogEntry[] {
  const conns = proxy.connectionLog().filter((c) => c.id > after);
  if (conns.length === 0) throw new BenchError("bench_flight_log", `${what}: the proxy saw no connection`);
  return conns;
}

/**
 * One fresh login then one resumption, on a new session. A new session has a new SCRAM
 * salted-password cache (xmpp/sasl/cache.ts lives per session), so every measured fresh login
 * pays PBKDF2: the cache is cold, as after an agent restart.
 */
export async function measureRun(opts: {
  proxy: LinkBreakingProxy;
  config: XmppConfig;
  password: string;
  latencyMs: number;
  variant: string;
}): Promise<RunResult> {
  const { proxy, latencyMs, variant } = opts;
  const rtt = 2 * latencyMs;
  // Generous: ~10 round trips plus TLS and PBKDF2 on a busy 2-core machine.
  const timeoutMs = 15_000 + 40 * rtt;
  // presence: false keeps the link quiet after 'online' (the initial presence goes out after it and
  // is not part of either figure), so nothing is in flight when the link is reset.
  const session = new XmppSession({ config: opts.config, password: opts.password, presence: false });
  let failed = true;
  try {
    const freshAfter = proxy.counters.connections;
    const freshOnline = nextOnline(session, timeoutMs, `${variant} fresh login`);
    const t0 = performance.now();
    session.start();
    const fresh = await freshOnline;
    const freshStats = session.stats();
    if (fresh.resumed || !freshStats.smEnabled)
      throw new BenchError("bench_login", `${variant}: online without a new SM-enabled session`, { ...freshStats });
    const freshConns = phaseConnections(proxy, freshAfter, `${variant} fresh login`);
    const freshWall = fresh.atMs - t0;

    // Let stragglers (e.g. TLS session tickets) land before the link is cut.
    await sleep(rtt + 50);
    const resumeAfter = proxy.counters.connections;
    let attemptAt = Number.NaN;
    const onState = (state: SessionState): void => {
      if (state === "resuming" || state === "connecting") attemptAt = performance.now();
    };
    session.on("state", onState);
    const resumeOnline = nextOnline(session, timeoutMs, `${variant} resumption`);
    const tReset = performance.now();
    proxy.reset();
    const resumed = await resumeOnline;
    session.off("state", onState);
    if (!resumed.resumed)
      throw new BenchError("bench_resume", `${variant}: the session came back as a new one, not resumed`, {
        latencyMs,
      });
    const resumeConns = phaseConnections(proxy, resumeAfter, `${variant} resumption`);
    const resumeWall = resumed.atMs - tReset;

    failed = false;
    return {
      fresh: {
        wallMs: freshWall,
        modelledMs: freshWall + rtt,
        ...countRoundTrips(freshConns.at(-1)!, t0, fresh.atMs),
        connections: freshConns.length,
        mechanism: freshStats.mechanism,
      },
      resume: {
        wallMs: resumeWall,
        modelledMs: resumeWall + rtt,
        ...countRoundTrips(resumeConns.at(-1)!, tReset, resumed.atMs),
        connections: resumeConns.length,
        waitMs: attemptAt - tReset,
      },
    };
  } finally {
    const cleanup = async (): Promise<void> => {
      await withTimeout(session.stop(), 10_000 + 4 * rtt, `${variant} session stop`);
      // The next run must start on an idle proxy, or its connection log would mix two sessions.
      await proxy.waitForActive(0, 5_000 + 4 * rtt);
    };
    // A failed run's own error is the one worth reporting; a cleanup error then only adds noise.
    await cleanup().catch((err: unknown) => {
      if (!failed) throw err;
    });
  }
}
