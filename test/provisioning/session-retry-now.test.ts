/**
 * XmppSession.retryNow(), which credential recovery uses to try the next password at once instead
 * of waiting out xmpp.reconnect.authFailureDelayMs. No server: a free 127.0.0.1 port refuses the
 * TCP connection, and the session's waits run on fake time, so only retryNow() can end them.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeTimers } from "../../kernel/timers.js";
import { XmppSession } from "../../xmpp/session.js";
import { freePort } from "../harness/ports.js";
import { sleep, testXmppConfig, waitFor } from "../xmpp/helpers.js";

describe("XmppSession.retryNow", () => {
  it("ends the reconnect wait, or skips the next one when called during an attempt", async () => {
    const port = await freePort();
    const timers = new FakeTimers();
    const config = testXmppConfig({ host: "127.0.0.1", port, domain: "iot.test", caFile: null }, "d@iot.test", "pw", {
      reconnect: { initialDelayMs: 600_000, maxDelayMs: 600_000, authFailureDelayMs: 600_000 },
    });
    const session = new XmppSession({ config, password: "pw", timers });
    session.retryNow(); // not started: no effect, no error
    const connects = () => session.stats().connects;
    try {
      session.start();
      await waitFor(() => session.state === "waiting", 5000, "first attempt to fail");
      assert.equal(connects(), 1);
      await sleep(50);
      assert.equal(connects(), 1, "waits (fake time does not move)");

      session.retryNow();
      await waitFor(() => connects() === 2 && session.state === "waiting", 5000, "second attempt");

      // Called while the attempt is under way (as a `fault` listener would): the wait after it is skipped.
      let armed = true;
      session.on("state", (st) => {
        if (st === "connecting" && armed) {
          armed = false;
          session.retryNow();
        }
      });
      session.retryNow();
      await waitFor(() => connects() === 4 && session.state === "waiting", 5000, "third and fourth attempts");
      await sleep(50);
      assert.equal(connects(), 4, "the skip is used once");
    } finally {
      await session.stop();
    }
    session.retryNow(); // stopped: no effect
    assert.equal(session.state, "stopped");
    assert.equal(timers.pendingCount, 0);
  });
});
