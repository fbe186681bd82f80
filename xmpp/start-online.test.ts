import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startOnline } from "./start-online.js";
import { sessionKit } from "./testing/index.js";

describe("startOnline", () => {
  it("resolves online once the session is", async () => {
    const kit = sessionKit();
    const faultListeners = kit.session.listenerCount("fault");
    const started = startOnline(kit.session, 10_000);
    await (await kit.nextServer()).login();
    assert.deepEqual(await started, { online: true });
    assert.equal(kit.session.listenerCount("fault"), faultListeners, "no listener left behind");
    assert.equal(kit.session.state, "online");
    await kit.stop();
  });

  it("a refused login is a fault outcome, and the session is stopped", async () => {
    // As the fleet admin's tool sets it: the first refusal is the fault.
    const kit = sessionKit({ config: { reconnect: { authFailureRetries: 0 } } });
    const started = startOnline(kit.session, 10_000);
    await (await kit.nextServer()).login({ authFailure: "account-disabled" });
    const outcome = await started;
    assert.ok(!outcome.online && !outcome.timedOut, JSON.stringify(outcome));
    assert.equal(outcome.fault.context.condition, "account-disabled");
    assert.equal(kit.session.state, "stopped");
  });

  it("no answer in time: timed out, with the session's last error, and the session is stopped", async () => {
    const kit = sessionKit();
    kit.refuseConnections(true);
    const outcome = await startOnline(kit.session, 50);
    assert.ok(!outcome.online && outcome.timedOut, JSON.stringify(outcome));
    assert.match(outcome.lastError ?? "", /./, "the refused connect is named");
    assert.equal(kit.session.state, "stopped");
  });
});
