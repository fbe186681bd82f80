/**
 * The session core against a real Prosody (from the harness), through the link-breaking proxy,
 * with a real slixmpp peer on the other end.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Element } from "ltx";
import type { AgentError } from "../../kernel/errors.js";
import { createCertificate } from "../harness/certs.js";
import { OperatorClient, type OperatorError } from "../harness/operator.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { type LinkBreakingProxy, startProxy } from "../harness/proxy.js";
import { makeTempDir } from "../harness/tmp.js";
import { newSession, sleep, testXmppConfig, waitFor, waitOnline } from "./helpers.js";

const PASSWORD = "device-pass";

function message(to: string, id: string, body: string): Element {
  const m = new Element("message", { to, id, type: "chat" });
  m.c("body").t(body);
  return m;
}

function firstError(s: ReturnType<typeof newSession>, timeoutMs = 8000): Promise<AgentError> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error(`no error event within ${timeoutMs} ms (state ${s.state})`)),
      timeoutMs,
    );
    s.once("fault", (err) => {
      clearTimeout(t);
      resolve(err);
    });
  });
}

describe("XMPP session against Prosody", () => {
  let prosody: ProsodyHandle;
  let peer: OperatorClient;

  before(async () => {
    prosody = await startProsody({ smacksHibernationTime: 30 });
    await prosody.register("device", PASSWORD);
    await prosody.register("peer", "peer-pass");
    peer = await OperatorClient.start({ name: "peer" });
    await peer.connect({
      jid: "peer@iot.test",
      password: "peer-pass",
      host: prosody.host,
      port: prosody.port,
      caFile: prosody.caFile,
    });
  });

  after(async () => {
    await peer?.stop();
    await prosody?.stop();
  });

  it("logs in with SCRAM-SHA-1 over STARTTLS and is online only once SM is enabled", async () => {
    const s = newSession(testXmppConfig(prosody, "device@iot.test", PASSWORD), PASSWORD);
    let smAtOnline: boolean | undefined;
    s.on("online", () => {
      smAtOnline = s.stats().smEnabled;
    });
    s.start();
    try {
      const info = await waitOnline(s);
      assert.equal(info.resumed, false);
      assert.match(info.jid, /^device@iot\.test\/agent/);
      assert.equal(smAtOnline, true);
      assert.equal(s.stats().mechanism, "SCRAM-SHA-1");
      const ping = new Element("iq", { type: "get", to: "iot.test" });
      ping.c("ping", { xmlns: "urn:xmpp:ping" });
      const res = await s.request(ping);
      assert.equal(res.attrs.type, "result");
      // The peer can discover us (disco#info answered by the session).
      const info2 = await peer.iq(info.jid, "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>");
      assert.match(info2.xml, /urn:xmpp:ping/);
      assert.match(info2.xml, /category="client"|category='client'/);
    } finally {
      await s.stop();
    }
  });

  it("refuses a wrong password with a clear error and no tight reconnect loop", async () => {
    const config = testXmppConfig(prosody, "device@iot.test", "wrong");
    const s = newSession(config, "wrong");
    const connects: number[] = [];
    s.on("state", (st) => st === "connecting" && connects.push(Date.now()));
    s.start();
    try {
      const err = await firstError(s);
      assert.equal(err.code, "auth_failed");
      assert.equal(err.context.condition, "not-authorized");
      // The first refusals are retried on the backoff (a server may refuse a right password while
      // its account store is away); the fault comes with the last, and then nothing for a while.
      const tries = 1 + config.reconnect.authFailureRetries;
      assert.equal(connects.length, tries);
      await sleep(1000);
      assert.equal(connects.length, tries, "a refused password must not be retried quickly");
      assert.equal(s.state, "waiting");
    } finally {
      await s.stop();
    }
  });

  it("refuses a server whose certificate it does not trust", async () => {
    const dir = makeTempDir();
    const other = await createCertificate({ dir: dir.path, name: "other" });
    const s = newSession(testXmppConfig({ ...prosody, caFile: other.caFile }, "device@iot.test", PASSWORD), PASSWORD);
    s.start();
    try {
      const err = await firstError(s);
      assert.equal(err.code, "tls_cert_rejected");
      assert.equal(s.stats().connects, 1);
    } finally {
      await s.stop();
      dir.remove();
    }
  });

  it("refuses a certificate that does not match the pin", async () => {
    const s = newSession(
      testXmppConfig(prosody, "device@iot.test", PASSWORD, { pinSha256: "ab".repeat(32) }),
      PASSWORD,
    );
    s.start();
    try {
      const err = await firstError(s);
      assert.equal(err.code, "tls_pin_mismatch");
    } finally {
      await s.stop();
    }
    // ...and accepts the right pin.
    const ok = newSession(
      testXmppConfig(prosody, "device@iot.test", PASSWORD, { pinSha256: prosody.certFingerprintSha256 }),
      PASSWORD,
    );
    ok.start();
    try {
      await waitOnline(ok);
    } finally {
      await ok.stop();
    }
  });

  it("refuses a server that does not offer TLS", async () => {
    const plain = await startProsody({ tls: false });
    const s = newSession(testXmppConfig(plain, "device@iot.test", PASSWORD), PASSWORD);
    s.start();
    try {
      const err = await firstError(s);
      assert.equal(err.code, "tls_unavailable");
      assert.equal(s.stats().connects, 1);
    } finally {
      await s.stop();
      await plain.stop();
    }
  });

  it("delivers 500 messages exactly once, in order, across 20 resets and 5 blackholes", async () => {
    const proxy = await startProxy({ targetPort: prosody.port });
    const s = newSession(testXmppConfig({ ...prosody, port: proxy.port }, "device@iot.test", PASSWORD), PASSWORD);
    peer.clearEvents();
    s.start();
    try {
      await waitOnline(s);
      const run = `r${Date.now()}`;
      const sends: Promise<void>[] = [];
      let breaks = 0;
      // 25 rounds: 20 messages go out, the link breaks while some are still unacknowledged,
      // the next round starts once the session is back.
      for (let round = 0; round < 25; round++) {
        for (let i = round * 20; i < round * 20 + 20; i++) {
          sends.push(s.send(message("peer@iot.test", `${run}-${i}`, `${run} ${i}`)));
        }
        await sleep(15);
        const back = waitOnline(s, 15_000);
        if (round % 5 === 4) await blackhole(proxy, 2500);
        else proxy.reset();
        breaks++;
        await back;
      }
      await Promise.all(sends);
      await waitFor(() => received(peer, run).length >= 500, 20_000, "500 messages at the peer");
      await sleep(300);
      const got = received(peer, run);
      assert.equal(breaks, 25);
      assert.equal(got.length, 500, `duplicates or losses: ${got.length}`);
      assert.deepEqual(
        got,
        Array.from({ length: 500 }, (_, i) => i),
      );
      const st = s.stats();
      assert.ok(st.resumes >= 20, `expected resumptions, got ${st.resumes}`);
      assert.equal(st.queued, 0);
    } finally {
      await s.stop();
      await proxy.stop();
    }
  });

  it("re-sends unacknowledged stanzas on a new session when resumption fails", async () => {
    // The hibernation time is shorter than the outage, so <resume/> gets <failed/>.
    const shortLived = await startProsody({ smacksHibernationTime: 1 });
    await shortLived.register("device", PASSWORD);
    await shortLived.register("peer", "peer-pass");
    const p2 = await OperatorClient.start({ name: "peer2" });
    await p2.connect({
      jid: "peer@iot.test",
      password: "peer-pass",
      host: shortLived.host,
      port: shortLived.port,
      caFile: shortLived.caFile,
    });
    const proxy = await startProxy({ targetPort: shortLived.port });
    const s = newSession(testXmppConfig({ ...shortLived, port: proxy.port }, "device@iot.test", PASSWORD), PASSWORD);
    s.start();
    try {
      await waitOnline(s);
      const run = `f${Date.now()}`;
      // The first half reaches the server and is acknowledged...
      const first: Promise<void>[] = [];
      for (let i = 0; i < 50; i++) first.push(s.send(message("peer@iot.test", `${run}-${i}`, `${run} ${i}`)));
      await Promise.all(first);
      // ...the second half is written into a link that has silently died, so it is certainly
      // unacknowledged when the link is cut: it must be re-sent, and the first half must not be.
      proxy.blackhole(true);
      const sends: Promise<void>[] = [];
      for (let i = 50; i < 100; i++) sends.push(s.send(message("peer@iot.test", `${run}-${i}`, `${run} ${i}`)));
      // (>= 50: an answer to a peer's disco query may ride along.)
      await waitFor(() => s.stats().unacked >= 50, 5000, "the second half written, unacknowledged");
      // Cut the link and keep it down past the hibernation time.
      await proxy.refuse(true);
      proxy.reset();
      proxy.blackhole(false);
      await sleep(3000);
      await proxy.refuse(false);
      const back = await waitOnline(s);
      assert.equal(back.resumed, false);
      await Promise.all(sends);
      await waitFor(() => received(p2, run).length >= 100, 15_000, "100 messages at the peer");
      await sleep(300);
      const got = received(p2, run);
      assert.deepEqual(
        [...new Set(got)].sort((a, b) => a - b),
        Array.from({ length: 100 }, (_, i) => i),
      );
      assert.ok(s.stats().resumeFailures >= 1);
      assert.equal(got.length, 100, `duplicates after failed resumption: ${got.length - 100}`);
    } finally {
      await s.stop();
      await proxy.stop();
      await p2.stop();
      await shortLived.stop();
    }
  });

  it("recovers cleanly from garbage injected into the link", async () => {
    const proxy = await startProxy({ targetPort: prosody.port });
    const s = newSession(testXmppConfig({ ...prosody, port: proxy.port }, "device@iot.test", PASSWORD), PASSWORD);
    const reasons: string[] = [];
    s.on("offline", (o) => reasons.push(o.reason));
    s.start();
    try {
      await waitOnline(s);
      const again = waitOnline(s);
      // The proxy sits outside TLS: injected bytes corrupt the record layer, as line noise would.
      proxy.inject("<message><body>broken</bogus></message>");
      const info = await again;
      assert.equal(info.resumed, true);
      assert.equal(reasons.length, 1);
      const run = `g${Date.now()}`;
      await s.send(message("peer@iot.test", `${run}-0`, `${run} 0`));
      await waitFor(() => received(peer, run).length === 1, 5000, "message after recovery");
    } finally {
      await s.stop();
      await proxy.stop();
    }
  });

  it("skips oversized, deep and attribute-stuffed stanzas whole, answers the IQs, and stays connected", async () => {
    const proxy = await startProxy({ targetPort: prosody.port });
    const s = newSession(
      testXmppConfig({ ...prosody, port: proxy.port }, "device@iot.test", PASSWORD, {
        limits: { maxStanzaBytes: 16_384 },
      }),
      PASSWORD,
    );
    const offline: string[] = [];
    s.on("offline", (o) => offline.push(o.reason));
    const inbound: string[] = [];
    s.on("stanza", (el) => el.name === "message" && inbound.push(el.getChildText("body") ?? ""));
    s.start();
    try {
      const { jid } = await waitOnline(s);
      const deep = `${"<a>".repeat(40)}${"</a>".repeat(40)}`;
      // What issue 12 saw drop the link: ten deep messages in a burst, and a body of 50 KB of
      // apostrophes, which the server re-escapes to about 300 KB (decoded it is 10 KB here).
      for (let i = 0; i < 10; i++)
        await peer.sendRaw(`<message to='${jid}' type='chat'><x xmlns='urn:t'>${deep}</x></message>`);
      await peer.sendRaw(`<message to='${jid}' type='chat'><body>${"'".repeat(10_000)}</body></message>`);
      await peer.sendRaw(`<message to='${jid}' type='chat'><body>${"x".repeat(40_000)}</body></message>`);
      const attrs = Array.from({ length: 100 }, (_, i) => `a${i}='1'`).join(" ");
      await peer.sendRaw(`<message to='${jid}' type='chat'><x xmlns='urn:t' ${attrs}/></message>`);
      await assert.rejects(peer.iq(jid, "get", `<query xmlns='urn:t'>${deep}</query>`), (err: OperatorError) => {
        // slixmpp 1.8 does not know RFC 6120's policy-violation by name: read the stanza.
        assert.match(String(err.context.xml), /<policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/);
        return true;
      });
      await assert.rejects(
        peer.iq(jid, "get", `<query xmlns='urn:t'>${"y".repeat(40_000)}</query>`),
        (err: OperatorError) => {
          assert.equal(err.condition, "not-acceptable");
          return true;
        },
      );
      await peer.sendRaw(`<message to='${jid}' type='chat'><body>small</body></message>`);
      await waitFor(() => inbound.includes("small"), 5000, "the next message");
      assert.deepEqual(offline, [], "the link stayed up");
      assert.deepEqual(
        inbound.map((b) => (b.length > 20 ? `${b[0]} x ${b.length}` : b)),
        ["' x 10000", "small"],
      );
      assert.equal(s.stats().stanzasSkipped, 14);
      // Stream management counted the skipped stanzas: nothing is re-delivered after a resumption.
      const again = waitOnline(s);
      proxy.reset();
      assert.equal((await again).resumed, true);
      await sleep(500);
      assert.deepEqual(inbound.slice(2), [], "nothing was delivered twice");
    } finally {
      await s.stop();
      await proxy.stop();
    }
  });

  it("drops a stanza too large even to skip, resumes, and is not fed the same stanza again", async () => {
    const s = newSession(
      testXmppConfig(prosody, "device@iot.test", PASSWORD, {
        limits: { maxStanzaBytes: 16_384, ceilingBytes: 32_768 },
      }),
      PASSWORD,
    );
    const reasons: string[] = [];
    s.on("offline", (o) => reasons.push(o.reason));
    const inbound: string[] = [];
    s.on("stanza", (el) => el.name === "message" && inbound.push(el.getChildText("body") ?? ""));
    s.start();
    try {
      const { jid } = await waitOnline(s);
      const again = waitOnline(s);
      await peer.sendRaw(`<message to='${jid}' type='chat'><body>${"x".repeat(40_000)}</body></message>`);
      const info = await again;
      assert.equal(info.resumed, true);
      assert.match(reasons[0] ?? "", /^stanza_over_ceiling/);
      await peer.sendRaw(`<message to='${jid}' type='chat'><body>small</body></message>`);
      await waitFor(() => inbound.includes("small"), 5000, "the next message");
      await sleep(500);
      assert.equal(reasons.length, 1, `reconnected again: ${reasons.join("; ")}`);
      assert.deepEqual(inbound, ["small"]);
    } finally {
      await s.stop();
    }
  });
});

async function blackhole(proxy: LinkBreakingProxy, ms: number): Promise<void> {
  proxy.blackhole(true);
  await sleep(ms);
  proxy.blackhole(false);
}

/** Sequence numbers the peer received for one run, in arrival order. */
function received(peer: OperatorClient, run: string): number[] {
  return peer
    .messages()
    .filter((m) => m.body?.startsWith(`${run} `))
    .map((m) => Number(m.body!.slice(run.length + 1)));
}
