/**
 * Several endpoints (xmpp.servers) against a real Prosody reached through two link-breaking proxies,
 * i.e. two ways to one server: the session starts on the endpoint of lowest priority, and when that
 * one dies (links reset, port refused) it goes on to the other within one reconnect attempt and
 * resumes its stream-management session there; messages sent to it meanwhile arrive once. The
 * cluster case (two ejabberd nodes) is test/interop/ejabberd-cluster-failover.test.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Element } from "ltx";
import { OperatorClient } from "../harness/operator.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { type LinkBreakingProxy, startProxy } from "../harness/proxy.js";
import { newSession, testXmppConfig, waitFor, waitOnline } from "./helpers.js";

const PASS = "failover-pw";

describe("failover between configured endpoints (Prosody behind two proxies)", () => {
  let prosody: ProsodyHandle;
  let a: LinkBreakingProxy;
  let b: LinkBreakingProxy;
  let op: OperatorClient;

  before(async () => {
    prosody = await startProsody({ smacksHibernationTime: 60 });
    await prosody.register("device", PASS);
    await prosody.register("sender", PASS);
    a = await startProxy({ targetPort: prosody.port });
    b = await startProxy({ targetPort: prosody.port });
    op = await OperatorClient.login(prosody, "sender", PASS);
  });
  after(async () => {
    await op?.stop();
    await a?.stop();
    await b?.stop();
    await prosody?.stop();
  });

  it("starts on the first priority, fails over to the next when it dies, resumes there, loses nothing", async () => {
    const config = testXmppConfig(prosody, "device@iot.test/agent", PASS, {
      server: undefined,
      servers: [
        { address: `127.0.0.1:${a.port}`, priority: 0 },
        { address: `127.0.0.1:${b.port}`, priority: 10 },
      ],
    });
    const session = newSession(config, PASS);
    const got: string[] = [];
    session.on("stanza", (el: Element) => {
      const body = el.getChildText("body");
      if (el.name === "message" && body) got.push(body);
    });
    try {
      const first = waitOnline(session);
      session.start();
      await first;
      assert.equal(a.counters.active, 1, "on the endpoint of priority 0");
      assert.equal(b.counters.active, 0);

      // The first endpoint dies: links reset, its port refused from now on.
      await a.refuse(true);
      const back = waitOnline(session, 15_000);
      a.reset();
      // Sent while the device is between endpoints: Prosody holds them for the resumption.
      for (let i = 0; i < 5; i++) await op.sendMessage("device@iot.test/agent", `during ${i}`);
      const info = await back;
      assert.equal(info.resumed, true, "the session was resumed on the other endpoint");
      assert.equal(b.counters.active, 1, "now on the endpoint of priority 10");
      await op.sendMessage("device@iot.test/agent", "after");
      await waitFor(() => got.includes("after"), 10_000, "the message sent after the failover");
      assert.deepEqual(got, ["during 0", "during 1", "during 2", "during 3", "during 4", "after"]);
      const st = session.stats();
      assert.equal(st.resumes, 1);
      assert.equal(st.resumeFailures, 0);
      // And the way is still open: a request round trip on the new endpoint.
      const ping = new Element("iq", { type: "get", to: "iot.test" }).c("ping", { xmlns: "urn:xmpp:ping" }).root();
      await session.request(ping);
    } finally {
      await session.stop();
      await a.refuse(false);
    }
  });
});
