import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AgentError } from "../kernel/errors.js";
import { silentLogger } from "../kernel/log.js";
import { AuthError } from "./negotiate.js";
import { isPersistentFailure, ReconnectLoop } from "./reconnect.js";
import { KitClock, settle } from "./testing/index.js";

const CONFIG = { initialDelayMs: 1000, maxDelayMs: 8000, factor: 2, authFailureDelayMs: 60_000, authFailureRetries: 0 };

/** A loop whose attempts follow a script: "online" (got online, then lost), or an error to throw. */
function setup(script: (AgentError | Error | "online")[], config = CONFIG) {
  const clock = new KitClock();
  const log: string[] = [];
  const attempts: number[] = [];
  const loop = new ReconnectLoop({
    config,
    timers: clock,
    log: silentLogger,
    random: () => 1,
    attempt: async () => {
      attempts.push(clock.now());
      const step = script.shift() ?? "online";
      if (step === "online") return true;
      throw step;
    },
    failed: (err, persistent) => log.push(`${err.code}${persistent ? " (persistent)" : ""}`),
    waiting: () => log.push("waiting"),
  });
  return { clock, log, attempts, loop };
}

describe("ReconnectLoop", () => {
  it("waits with exponential backoff after failures, resets after an attempt that got online", async () => {
    const t = setup([
      new AgentError("connect_failed", "refused"),
      new AgentError("connect_failed", "refused"),
      "online",
      new AgentError("connect_failed", "refused"),
    ]);
    t.loop.start();
    await t.clock.advance(10_000);
    // 0; +1 s; +2 s; online, reset: +1 s; +2 s ...
    assert.deepEqual(t.attempts.slice(0, 5), [0, 1000, 3000, 4000, 6000]);
    assert.deepEqual(t.log.slice(0, 6), [
      "connect_failed",
      "waiting",
      "connect_failed",
      "waiting",
      "waiting",
      "connect_failed",
    ]);
    await t.loop.stop(() => undefined);
    assert.equal(t.clock.pendingCount, 0);
  });

  it("waits authFailureDelayMs after a failure that needs a person, and wraps foreign errors", async () => {
    const t = setup([new AuthError("auth_failed", "no"), new Error("boom")]);
    t.loop.start();
    await t.clock.advance(59_999);
    assert.deepEqual(t.attempts, [0]);
    await t.clock.advance(1);
    assert.deepEqual(t.log, ["auth_failed (persistent)", "waiting", "connect_failed", "waiting"]);
    await t.loop.stop(() => undefined);
  });

  it("retries the first authFailureRetries refusals in a row on the backoff; online starts the count again", async () => {
    const refused = () => new AuthError("auth_failed", "not-authorized");
    const t = setup([refused(), refused(), refused(), "online", refused(), "online"], {
      ...CONFIG,
      authFailureRetries: 2,
    });
    t.loop.start();
    await t.clock.advance(59_999);
    // 0; +1 s; +2 s (retries, not persistent); then the third refusal waits the long delay.
    assert.deepEqual(t.attempts, [0, 1000, 3000]);
    assert.deepEqual(
      t.log.filter((l) => l !== "waiting"),
      ["auth_failed", "auth_failed", "auth_failed (persistent)"],
    );
    await t.clock.advance(4001);
    // Online at 63 s (then lost): +1 s; the next refusal is the first of a new run, retried soon.
    assert.deepEqual(t.attempts, [0, 1000, 3000, 63_000, 64_000]);
    assert.deepEqual(t.log.filter((l) => l !== "waiting").slice(3), ["auth_failed"]);
    await t.loop.stop(() => undefined);
  });

  it("retries no other failure that needs a person", async () => {
    const t = setup([new AgentError("tls_cert_rejected", "untrusted")], { ...CONFIG, authFailureRetries: 2 });
    t.loop.start();
    await t.clock.advance(59_999);
    assert.deepEqual(t.attempts, [0]);
    assert.deepEqual(t.log, ["tls_cert_rejected (persistent)", "waiting"]);
    await t.loop.stop(() => undefined);
  });

  it("knows which failures need a person", () => {
    for (const code of ["auth_failed", "tls_cert_rejected", "tls_pin_mismatch", "tls_unavailable", "sasl_no_mechanism"])
      assert.equal(isPersistentFailure(new AgentError(code, "")), true, code);
    for (const code of ["connect_failed", "negotiation_timeout", "bind_failed", "stream_error"])
      assert.equal(isPersistentFailure(new AgentError(code, "")), false, code);
    assert.equal(isPersistentFailure(new AuthError("anything", "")), true);
  });

  it("retryNow() ends a wait, or skips the one after an attempt under way; not after stop()", async () => {
    const t = setup([new AgentError("connect_failed", "x"), new AgentError("connect_failed", "x")]);
    t.loop.retryNow(false); // not running: nothing
    t.loop.start();
    await settle();
    t.loop.retryNow(false);
    await settle();
    assert.deepEqual(t.attempts, [0, 0]);
    await t.loop.stop(() => undefined);
    t.loop.retryNow(false);
    await settle();
    assert.deepEqual(t.attempts, [0, 0]);
    assert.equal(t.loop.running, false);
  });

  it("retryNow() during an attempt that is still connecting skips the wait after it, once", async () => {
    const clock = new KitClock();
    const attempts: number[] = [];
    let fail: (() => void) | undefined;
    const loop = new ReconnectLoop({
      config: CONFIG,
      timers: clock,
      log: silentLogger,
      random: () => 1,
      attempt: () => {
        attempts.push(clock.now());
        return new Promise<boolean>((_resolve, reject) => {
          fail = () => reject(new AgentError("connect_failed", "x"));
        });
      },
      failed: () => undefined,
      waiting: () => undefined,
    });
    loop.start();
    await settle();
    loop.retryNow(true);
    fail!();
    await settle();
    assert.deepEqual(attempts, [0, 0], "no wait after the attempt retryNow() was aimed at");
    fail!();
    await clock.advance(1999);
    assert.deepEqual(attempts, [0, 0], "the skip is used once");
    await clock.advance(1);
    assert.deepEqual(attempts, [0, 0, 2000]);
    await loop.stop(() => fail!());
  });
});
