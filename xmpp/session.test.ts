/**
 * The session's state machine in-process (xmpp/testing): states and events, stop(), the
 * reconnect loop's waits on the fake clock, retryNow(), presence, the queue across links. Against
 * real servers: test/xmpp/.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Element } from "ltx";
import type { AgentError } from "../kernel/errors.js";
import { NS_SM } from "./stream-management.js";
import { sessionKit, STREAM_END } from "./testing/index.js";

function message(n: number): Element {
  return new Element("message", { to: "peer@iot.test", id: `m${n}` }).c("body").t(`m${n}`).root();
}

describe("XmppSession (in-process)", () => {
  it("goes connecting -> online -> offline -> waiting -> resuming -> online, with one event each", async () => {
    const kit = sessionKit();
    const first = await kit.online();
    first.hangUp();
    await kit.settle();
    assert.equal(kit.events.offline[0]?.error?.code, "connection_lost");
    assert.equal(kit.session.state, "waiting");
    await kit.clock.advance(99);
    assert.equal(kit.servers.length, 1, "waits the backoff");
    await kit.clock.advance(1);
    await (await kit.nextServer()).login({ resume: { resumed: 0 } });
    await kit.settle();
    assert.deepEqual(kit.events.states, ["connecting", "online", "offline", "waiting", "resuming", "online"]);
    assert.deepEqual(
      kit.events.online.map((o) => o.resumed),
      [false, true],
    );
    const st = kit.session.stats();
    assert.deepEqual(
      { connects: st.connects, resumes: st.resumes, disconnects: st.disconnects, lastError: st.lastError },
      { connects: 2, resumes: 1, disconnects: 1, lastError: "connection_lost: connection closed by peer" },
    );
    await kit.stop();
  });

  it("stop() closes the stream politely, rejects what is queued, and leaves no timer behind", async () => {
    const kit = sessionKit();
    const server = await kit.online();
    const sent = kit.session.send(message(1));
    await server.expect("message");
    await kit.session.stop();
    await assert.rejects(sent, (e: AgentError) => e.code === "session_closed");
    await server.expect(STREAM_END);
    assert.equal(server.clientEnded, true);
    assert.equal(kit.session.state, "stopped");
    assert.equal(kit.events.offline[0]?.reason, "closed_locally: connection closed by the agent");
    await assert.rejects(kit.session.send(message(2)), (e: AgentError) => e.code === "session_closed");
    await kit.settle();
    assert.equal(server.closed, true);
    assert.equal(kit.clock.pendingCount, 0);
  });

  it("stop() during negotiation and during a wait ends at once", async () => {
    const kit = sessionKit();
    kit.session.start();
    const server = await kit.nextServer();
    await server.expect("stream:stream");
    await kit.stop();
    assert.equal(kit.session.state, "stopped");
    assert.equal(kit.clock.pendingCount, 0);

    const waiting = sessionKit();
    waiting.refuseConnections(true);
    waiting.session.start();
    await waiting.settle();
    assert.equal(waiting.session.state, "waiting");
    await waiting.stop();
    assert.equal(waiting.session.state, "stopped");
    assert.equal(waiting.clock.pendingCount, 0);
  });

  it("a peer that lingers after </stream:stream> is cut off after the grace time", async () => {
    const kit = sessionKit();
    const server = await kit.online();
    // The server does not answer the client's FIN: only the grace timer ends the link.
    (server as unknown as { ended(): void }).ended = () => undefined;
    await kit.session.stop();
    await kit.settle();
    assert.equal(server.closed, false);
    await kit.clock.advance(1000);
    assert.equal(server.closed, true);
    assert.equal(kit.clock.pendingCount, 0);
  });

  it("backs off with growing waits while the server is unreachable, and starts over once online", async () => {
    const kit = sessionKit({
      config: { reconnect: { initialDelayMs: 1000, maxDelayMs: 4000 } },
      session: { random: () => 1 },
    });
    kit.refuseConnections(true);
    kit.session.start();
    const at: number[] = [];
    kit.session.on("state", (s) => s === "connecting" && at.push(kit.clock.now()));
    await kit.clock.advance(20_000);
    assert.deepEqual(at, [1000, 3000, 7000, 11_000, 15_000, 19_000], "1 s, 2 s, 4 s, then the 4 s cap");
    assert.match(kit.session.stats().lastError ?? "", /^connect_failed/);
    assert.deepEqual(kit.events.faults, []);
    kit.refuseConnections(false);
    await kit.clock.advance(4000);
    await (await kit.nextServer()).login();
    await kit.settle();
    kit.server.hangUp();
    await kit.clock.advance(999);
    assert.equal(kit.session.state, "waiting");
    await kit.clock.advance(1);
    assert.equal(kit.session.state, "resuming", "the backoff was reset by the session that got online");
    await kit.stop();
  });

  it("retryNow() ends a wait, or skips the next one when called during an attempt", async () => {
    // Every refusal a fault at once, and the long wait after it.
    const kit = sessionKit({ config: { reconnect: { authFailureRetries: 0 } } });
    kit.session.retryNow(); // not started: no effect
    kit.session.setPassword("wrong");
    kit.session.start();
    await (await kit.nextServer()).login();
    await kit.settle();
    assert.equal(kit.session.state, "waiting");
    kit.session.retryNow();
    await kit.settle();
    const second = await kit.nextServer();
    // A `fault` listener that fixes the password calls retryNow() during the attempt.
    kit.session.once("fault", () => {
      kit.session.setPassword("secret");
      kit.session.retryNow();
    });
    await second.login();
    await kit.settle();
    await (await kit.nextServer()).login();
    await kit.settle();
    assert.equal(kit.session.state, "online");
    assert.equal(kit.clock.now(), 0, "no time passed");
    kit.session.retryNow(); // online: no effect
    await kit.settle();
    assert.equal(kit.servers.length, 3);
    await kit.stop();
  });

  it("queues what is sent while offline and writes it once online, after the initial presence", async () => {
    const kit = sessionKit({
      session: { presence: true, presenceChildren: () => [new Element("status").t("ok")] },
    });
    const early = kit.session.send(message(1));
    const server = await kit.online();
    const out = await server.drain();
    assert.deepEqual(
      out.map((e) => e.name),
      ["presence", "message"],
    );
    assert.equal(out[0]?.getChildText("status"), "ok");
    assert.equal(out[0]?.getChild("c", "http://jabber.org/protocol/caps")?.attrs.hash, "sha-1");
    server.ack(2);
    await early;
    kit.session.refreshPresence();
    assert.equal((await server.expect("presence")).getChildText("status"), "ok");
    await kit.stop();
  });

  it("refuses what it must not send", async () => {
    const kit = sessionKit({
      config: { limits: { maxStanzaBytes: 1024 }, streamManagement: { maxQueue: 2, maxStrangerReplies: 1 } },
    });
    await assert.rejects(
      kit.session.send(new Element("iq", { type: "get" })),
      (e: AgentError) => e.code === "bad_stanza",
    );
    await assert.rejects(
      kit.session.request(new Element("iq", { type: "result" })),
      (e: AgentError) => e.code === "bad_stanza",
    );
    const big = new Element("message").c("body").t("x".repeat(2000)).root();
    await assert.rejects(kit.session.send(big), (e: AgentError) => e.code === "stanza_too_large");
    kit.session.send(message(1)).catch(() => undefined);
    kit.session.send(message(2)).catch(() => undefined);
    await assert.rejects(kit.session.send(message(3)), (e: AgentError) => e.code === "send_queue_full");
    await kit.stop();
  });

  it("probes an idle link with <r/> and keeps it while the server answers", async () => {
    const kit = sessionKit({ config: { keepalive: { idleMs: 10_000, timeoutMs: 2000 } } });
    const server = await kit.online();
    await kit.clock.advance(10_000);
    await server.expect("r", NS_SM);
    server.ack(0);
    await kit.clock.advance(10_000);
    await server.expect("r", NS_SM);
    await kit.clock.advance(2000);
    assert.equal(kit.events.offline[0]?.error?.code, "link_dead");
    await kit.stop();
  });

  it("a stanza too large even to skip drops the link, and is counted so the resumed stream skips it", async () => {
    const kit = sessionKit({ config: { limits: { maxStanzaBytes: 1024, ceilingBytes: 4096 } } });
    const first = await kit.online();
    first.sendStanza("<message from='peer@iot.test/x'><body>one</body></message>");
    // In pieces, as TCP delivers it: the parser is inside the stanza when the ceiling is passed.
    first.send("<message from='peer@iot.test/x'><body>");
    for (let i = 0; i < 5; i++) first.send("x".repeat(1000));
    await kit.settle();
    assert.equal(kit.events.offline[0]?.error?.code, "stanza_over_ceiling");
    assert.doesNotMatch(first.written, /stream:error/, "no stream error: the server keeps the session for resumption");
    await kit.clock.advance(100);
    const login = await (await kit.nextServer()).login({ resume: { resumed: 0 } });
    assert.equal(login.resume?.attrs.h, "2");
    await kit.stop();
  });

  it("answers the server's </stream:stream> and reconnects", async () => {
    const kit = sessionKit();
    const server = await kit.online();
    server.send("</stream:stream>");
    await server.expect(STREAM_END);
    await kit.settle();
    assert.equal(kit.events.offline[0]?.error?.code, "stream_closed");
    await kit.clock.advance(100);
    await kit.nextServer();
    await kit.stop();
  });

  it("reports a stream error's condition and text", async () => {
    const kit = sessionKit();
    const server = await kit.online();
    server.send(
      "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>replaced</text></stream:error>",
    );
    await kit.settle();
    const error = kit.events.offline[0]?.error;
    assert.equal(error?.code, "stream_error");
    assert.deepEqual(error?.context, { condition: "conflict", text: "replaced" });
    await kit.stop();
  });
});
