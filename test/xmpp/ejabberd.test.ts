/** The same login + stream-management checks against ejabberd, a second server implementation. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Element } from "ltx";
import { type EjabberdHandle, ejabberdInstalled, startEjabberd } from "../harness/ejabberd.js";
import { OperatorClient } from "../harness/operator.js";
import { startProxy } from "../harness/proxy.js";
import { newSession, sleep, testXmppConfig, waitFor, waitOnline } from "./helpers.js";

const PASSWORD = "device-pass";

describe("XMPP session against ejabberd", {
  skip: ejabberdInstalled() ? false : "ejabberd is not installed (scripts/setup installs it)",
}, () => {
  let server: EjabberdHandle;
  let peer: OperatorClient;

  before(async () => {
    server = await startEjabberd({ resumeTimeout: 30 });
    await server.register("device", PASSWORD);
    await server.register("peer", "peer-pass");
    peer = await OperatorClient.start({ name: "ejabberd-peer" });
    await peer.connect({
      jid: "peer@iot.test",
      password: "peer-pass",
      host: server.host,
      port: server.port,
      caFile: server.caFile,
    });
  });

  after(async () => {
    await peer?.stop();
    await server?.stop();
  });

  it("logs in over STARTTLS with SCRAM (channel binding where offered) and enables SM", async () => {
    const s = newSession(testXmppConfig(server, "device@iot.test", PASSWORD), PASSWORD);
    s.start();
    try {
      const info = await waitOnline(s);
      assert.match(info.jid, /^device@iot\.test\//);
      const st = s.stats();
      assert.equal(st.smEnabled, true);
      // ejabberd 23.01 offers SCRAM-SHA-1-PLUS without XEP-0440: bound with tls-unique.
      assert.equal(st.mechanism, "SCRAM-SHA-1-PLUS");
    } finally {
      await s.stop();
    }
  });

  it("refuses a wrong password without a tight loop", async () => {
    const config = testXmppConfig(server, "device@iot.test", "nope");
    const s = newSession(config, "nope");
    const faults: string[] = [];
    s.on("fault", (e) => faults.push(e.code));
    s.start();
    try {
      await waitFor(() => faults.length > 0, 8000, "auth fault");
      await sleep(500);
      assert.deepEqual(faults, ["auth_failed"]);
      // The first refusals are retried on the backoff (xmpp.reconnect.authFailureRetries), then no more.
      assert.equal(s.stats().connects, 1 + config.reconnect.authFailureRetries);
    } finally {
      await s.stop();
    }
  });

  it("delivers 200 messages exactly once, in order, across 10 resets", async () => {
    const proxy = await startProxy({ targetPort: server.port });
    const s = newSession(testXmppConfig({ ...server, port: proxy.port }, "device@iot.test", PASSWORD), PASSWORD);
    s.start();
    try {
      await waitOnline(s);
      const run = `e${Date.now()}`;
      const sends: Promise<void>[] = [];
      for (let round = 0; round < 10; round++) {
        for (let i = round * 20; i < round * 20 + 20; i++) {
          const m = new Element("message", { to: "peer@iot.test", id: `${run}-${i}`, type: "chat" });
          m.c("body").t(`${run} ${i}`);
          sends.push(s.send(m));
        }
        await sleep(15);
        const back = waitOnline(s, 15_000);
        proxy.reset();
        await back;
      }
      await Promise.all(sends);
      const got = () =>
        peer
          .messages()
          .filter((m) => m.body?.startsWith(`${run} `))
          .map((m) => Number(m.body!.slice(run.length + 1)));
      await waitFor(() => got().length >= 200, 15_000, "200 messages");
      await sleep(300);
      assert.deepEqual(
        got(),
        Array.from({ length: 200 }, (_, i) => i),
      );
      assert.ok(s.stats().resumes >= 5, `resumes: ${s.stats().resumes}`);
    } finally {
      await s.stop();
      await proxy.stop();
    }
  });
});
