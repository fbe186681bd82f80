/** Shared set-up for the session suites: a session config aimed at a harness server. */
import { Ctx, INVALID } from "../../kernel/schema-dsl.js";
import { createLogger, type Logger } from "../../kernel/log.js";
import { type XmppConfig, xmppConfigSchema } from "../../xmpp/config.js";
import { XmppSession, type SessionOptions } from "../../xmpp/session.js";

export interface ServerLike {
  host: string;
  port: number;
  domain: string;
  caFile: string | null;
}

/** Tight timings so link failures are noticed within about a second. */
export function testXmppConfig(
  server: ServerLike,
  jid: string,
  password: string,
  overrides: Record<string, unknown> = {},
): XmppConfig {
  const ctx = new Ctx();
  const raw = {
    jid,
    password,
    server: `${server.host}:${server.port}`,
    ...(server.caFile ? { caFile: server.caFile } : {}),
    keepalive: { idleMs: 1000, timeoutMs: 1000 },
    reconnect: { initialDelayMs: 50, maxDelayMs: 400, authFailureDelayMs: 60_000 },
    timeouts: { connectMs: 2000, negotiationMs: 3000, iqMs: 5000 },
    streamManagement: { ackDelayMs: 50 },
    ...overrides,
  };
  const cfg = xmppConfigSchema.parse(raw, ctx);
  if (cfg === INVALID) throw new Error(`bad test config: ${JSON.stringify(ctx.issues)}`);
  return cfg;
}

export function testLogger(): Logger {
  return createLogger({ level: process.env.TEST_LOG === "debug" ? "debug" : "silent" });
}

export function newSession(config: XmppConfig, password: string, extra: Partial<SessionOptions> = {}): XmppSession {
  return new XmppSession({ config, password, log: testLogger(), ...extra });
}

export function waitOnline(s: XmppSession, timeoutMs = 10_000): Promise<{ resumed: boolean; jid: string }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () =>
        reject(
          new Error(`session not online within ${timeoutMs} ms (state ${s.state}, last error ${s.stats().lastError})`),
        ),
      timeoutMs,
    );
    s.once("online", (info) => {
      clearTimeout(t);
      resolve(info);
    });
  });
}

export function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - start > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

/**
 * Waits until `value()` reaches `target`, for as long as it keeps moving: fails when it has not
 * grown for `stallMs`, or after `maxMs` in all. For a backlog whose drain rate depends on the
 * machine's load (a server still delivering a flood), where a fixed deadline is a guess.
 */
export function waitForProgress(
  value: () => number,
  target: number,
  o: { stallMs: number; maxMs: number },
  what: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    let last = value();
    let lastMove = start;
    const tick = () => {
      const v = value();
      if (v >= target) return resolve();
      const now = Date.now();
      if (v > last) {
        last = v;
        lastMove = now;
      }
      if (now - lastMove > o.stallMs || now - start > o.maxMs)
        return reject(new Error(`timed out waiting for ${what}: ${v} of ${target} after ${now - start} ms`));
      setTimeout(tick, 50);
    };
    tick();
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
