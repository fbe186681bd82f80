/**
 * Negotiation branches, in-process: the session against a scripted server end (xmpp/testing)
 * on a fake clock. The real TLS handshake and real servers are test/xmpp/'s.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Element } from "ltx";
import { AuthError, NS_BIND, NS_SASL, NS_TLS } from "./negotiate.js";
import { NS_SM } from "./stream-management.js";
import { sessionKit } from "./testing/index.js";

function message(n: number): Element {
  return new Element("message", { to: "peer@iot.test", id: `m${n}` }).c("body").t(`m${n}`).root();
}

describe("negotiation (in-process)", () => {
  it("authenticates with SCRAM, binds, enables SM with resumption, and only then is online", async () => {
    const kit = sessionKit();
    const server = await kit.online();
    const login = kit.events.online[0];
    assert.deepEqual(login, { resumed: false, jid: "device@iot.test/agent" });
    assert.deepEqual(kit.events.states, ["connecting", "online"]);
    const st = kit.session.stats();
    assert.equal(st.mechanism, "SCRAM-SHA-1");
    assert.equal(st.smEnabled, true);
    assert.equal(kit.session.jid, "device@iot.test/agent");
    assert.match(server.written, /<enable xmlns="urn:xmpp:sm:3" resume="true" max="600"\/>$/);
    await kit.stop();
    assert.equal(kit.clock.pendingCount, 0, "stop() leaves no timer behind");
  });

  it("binds the TLS channel with SCRAM-SHA-256-PLUS when offered", async () => {
    const kit = sessionKit();
    await kit.online({ mechanisms: ["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"] });
    assert.equal(kit.session.stats().mechanism, "SCRAM-SHA-256-PLUS");
    await kit.stop();
  });

  it("without XEP-0198 in the features: online, best effort, a written stanza counts as delivered", async () => {
    const kit = sessionKit();
    const server = await kit.online({ sm: false });
    assert.equal(kit.session.stats().smEnabled, false);
    assert.doesNotMatch(server.written, /<enable/);
    await kit.session.send(message(1));
    await server.expect("message");
    await kit.clock.advance(60_000);
    // Without SM the keepalive probes with an XEP-0199 ping.
    const ping = await server.expect("iq");
    assert.equal(ping.getChild("ping")?.attrs.xmlns, "urn:xmpp:ping");
    server.hangUp();
    await kit.clock.advance(100);
    const next = await kit.nextServer();
    const login = await next.login({ sm: false });
    assert.equal(login.resume, undefined, "nothing to resume");
    await kit.stop();
  });

  it("with SM enabled but no resumption offered: the next connection binds afresh", async () => {
    const kit = sessionKit();
    const first = await kit.online({ enabled: { resume: false } });
    assert.equal(kit.session.stats().smEnabled, true);
    first.hangUp();
    await kit.clock.advance(100);
    assert.deepEqual(kit.events.states, ["connecting", "online", "offline", "waiting", "connecting"]);
    const login = await (await kit.nextServer()).login();
    assert.equal(login.resume, undefined);
    assert.ok(login.bind);
    await kit.settle();
    assert.equal(kit.events.online.at(-1)?.resumed, false);
    await kit.stop();
  });

  it("resumes with the count it handled, skips bind and presence, and re-sends what the server lacks", async () => {
    const kit = sessionKit({ session: { presence: true } });
    const first = await kit.online({ enabled: { id: "abc", max: 60 } });
    await first.expect("presence");
    first.sendStanza("<message from='peer@iot.test/x'><body>hi</body></message>");
    for (const n of [1, 2, 3]) kit.session.send(message(n)).catch(() => undefined);
    await first.drain();
    first.ack(2);
    await kit.settle();
    first.hangUp();
    await kit.clock.advance(100);
    assert.equal(kit.events.states.at(-1), "resuming");
    const second = await kit.nextServer();
    const login = await second.login({ resume: { resumed: 3 } });
    assert.deepEqual(
      { previd: login.resume?.attrs.previd, h: login.resume?.attrs.h, bind: login.bind },
      { previd: "abc", h: "1", bind: undefined },
    );
    await kit.settle();
    assert.deepEqual(kit.events.online.at(-1), { resumed: true, jid: "device@iot.test/agent" });
    const out = await second.drain();
    assert.deepEqual(
      out.map((e) => e.getChildText("body") ?? e.name),
      ["m3"],
      "no presence, no duplicate",
    );
    assert.equal(kit.session.stats().resumes, 1);
    await kit.stop();
  });

  it("resumes where the server said (XEP-0198 location)", async () => {
    const kit = sessionKit();
    const first = await kit.online({ enabled: { location: "sm.iot.test:5333" } });
    assert.equal(kit.targets[0]?.location, undefined);
    first.hangUp();
    await kit.clock.advance(100);
    await kit.nextServer();
    assert.equal(kit.targets[1]?.location, "sm.iot.test:5333");
    await kit.stop();
  });

  it("a refused bind fails the attempt; the next one comes after the backoff", async () => {
    const kit = sessionKit();
    kit.session.start();
    await (await kit.nextServer()).login({ bind: { error: "resource-constraint" } });
    await kit.settle();
    assert.equal(kit.session.state, "waiting");
    assert.match(kit.session.stats().lastError ?? "", /^bind_failed: resource binding failed: resource-constraint/);
    assert.deepEqual(kit.events.faults, [], "not a failure that needs a person");
    await kit.clock.advance(100);
    await (await kit.nextServer()).login();
    await kit.settle();
    assert.equal(kit.session.state, "online");
    await kit.stop();
  });

  it("a bind refused by the server's policy (not-allowed: ejabberd's answer to a revoked certificate) is a fault", async () => {
    const kit = sessionKit();
    kit.session.start();
    await (await kit.nextServer()).login({ bind: { error: "not-allowed" } });
    await kit.settle();
    assert.equal(kit.events.faults[0]?.code, "bind_refused");
    await kit.clock.advance(100);
    await kit.settle();
    assert.equal(kit.servers.length, 1, "no quick retry: it waits authFailureDelayMs");
    await kit.stop();
  });

  it("a refused password: retried soon authFailureRetries times, then an AuthError fault and authFailureDelayMs", async () => {
    const kit = sessionKit();
    const retries = kit.config.reconnect.authFailureRetries;
    assert.equal(retries, 2, "the default");
    kit.session.setPassword("wrong");
    kit.session.start();
    for (let i = 0; i <= retries; i++) {
      if (i > 0) await kit.clock.advance(100); // the backoff's floor in the kit
      const login = await (await kit.nextServer()).login();
      assert.equal(login.authenticated, false);
      await kit.settle();
      assert.equal(kit.events.refusals.length, i + 1, "each refusal is told");
      assert.equal(kit.events.faults.length, i < retries ? 0 : 1, "a fault only once the retries are spent");
    }
    const fault = kit.events.faults[0];
    assert.ok(fault instanceof AuthError, String(fault));
    assert.equal(fault.code, "auth_failed");
    assert.equal(fault.context.condition, "not-authorized");
    assert.equal(kit.session.state, "waiting");
    await kit.clock.advance(kit.config.reconnect.authFailureDelayMs - 1);
    assert.equal(kit.servers.length, retries + 1, "no tight loop against a server that said no");
    kit.session.setPassword("secret");
    await kit.clock.advance(1);
    await (await kit.nextServer()).login();
    await kit.settle();
    assert.equal(kit.session.state, "online");
    await kit.stop();
  });

  it("a SASL <failure/> condition reaches the refusal and the fault", async () => {
    const kit = sessionKit({ config: { reconnect: { authFailureRetries: 0 } } });
    kit.session.start();
    await (await kit.nextServer()).login({ authFailure: "account-disabled" });
    await kit.settle();
    assert.equal(kit.events.refusals[0]?.context.condition, "account-disabled");
    assert.equal(kit.events.faults[0]?.context.condition, "account-disabled");
    await kit.stop();
  });

  it("a server that never sends its header: negotiation_timeout after timeouts.negotiationMs", async () => {
    const kit = sessionKit({ config: { timeouts: { negotiationMs: 5000 } } });
    kit.session.start();
    const server = await kit.nextServer();
    await server.expect("stream:stream");
    await kit.clock.advance(4999);
    assert.equal(kit.session.state, "connecting");
    await kit.clock.advance(1);
    assert.equal(kit.session.state, "waiting");
    assert.match(kit.session.stats().lastError ?? "", /^negotiation_timeout: no stream header/);
    assert.equal(server.closed, true, "the silent connection is torn down");
    await kit.stop();
  });

  it("a server that goes silent after <auth/>: negotiation_timeout naming the step", async () => {
    const kit = sessionKit({ config: { timeouts: { negotiationMs: 5000 } } });
    kit.session.start();
    const server = await kit.nextServer();
    await server.acceptStream(`<mechanisms xmlns='${NS_SASL}'><mechanism>SCRAM-SHA-1</mechanism></mechanisms>`);
    await server.expect("auth", NS_SASL);
    await kit.clock.advance(5000);
    assert.match(
      kit.session.stats().lastError ?? "",
      /^negotiation_timeout: server did not answer SASL within 5000 ms/,
    );
    await kit.clock.advance(100);
    await kit.nextServer();
    await kit.stop();
  });

  it("a server that goes silent after <enable/>: the attempt fails, no `online`", async () => {
    const kit = sessionKit({ config: { timeouts: { negotiationMs: 5000 } } });
    kit.session.start();
    const server = await kit.nextServer();
    await server.login({ enabled: "silent" });
    await kit.clock.advance(5000);
    assert.match(kit.session.stats().lastError ?? "", /^negotiation_timeout: server did not answer <enable\/>/);
    assert.deepEqual(kit.events.online, []);
    assert.equal(server.closed, true);
    await kit.stop();
  });

  it("a refused <enable/>: online without SM", async () => {
    const kit = sessionKit();
    await kit.online({ enabled: "failed" });
    assert.equal(kit.session.stats().smEnabled, false);
    await kit.stop();
  });

  it("PLAIN is refused unless allowed, even over TLS", async () => {
    const kit = sessionKit();
    kit.session.start();
    const server = await kit.nextServer();
    await server.acceptStream(`<mechanisms xmlns='${NS_SASL}'><mechanism>PLAIN</mechanism></mechanisms>`);
    await kit.settle();
    assert.equal(kit.events.faults[0]?.code, "sasl_plain_refused");
    assert.doesNotMatch(server.written, /<auth/);
    await kit.stop();
  });

  it("stanzas that arrive before <enabled/> are handled and not counted", async () => {
    const kit = sessionKit({ config: { allowPlain: true, saslMechanisms: "PLAIN" } });
    kit.session.start();
    const s = await kit.nextServer();
    await s.acceptStream(`<mechanisms xmlns='${NS_SASL}'><mechanism>PLAIN</mechanism></mechanisms>`);
    await s.expect("auth");
    s.send(`<success xmlns='${NS_SASL}'/>`);
    await s.acceptStream(`<bind xmlns='${NS_BIND}'/><sm xmlns='${NS_SM}'/>`);
    const bind = await s.expect("iq");
    s.sendStanza("<message from='peer@iot.test/x'><body>early</body></message>");
    s.send(`<iq type='result' id='${bind.attrs.id}'><bind xmlns='${NS_BIND}'><jid>device@iot.test/r</jid></bind></iq>`);
    await s.expect("enable");
    s.sendStanza("<message from='peer@iot.test/x'><body>early too</body></message>");
    s.send(`<enabled xmlns='${NS_SM}' id='x' resume='true'/>`);
    await kit.settle();
    assert.equal(kit.session.state, "online");
    assert.equal(kit.session.jid, "device@iot.test/r");
    assert.deepEqual(
      kit.events.stanzas.map((e) => e.getChildText("body")),
      ["early", "early too"],
    );
    s.requestAck();
    assert.equal((await s.expect("a")).attrs.h, "0");
    await kit.stop();
  });

  describe("TLS is required", () => {
    it("refuses a plain server that does not offer STARTTLS, before any credentials", async () => {
      const kit = sessionKit({ secure: false });
      kit.session.start();
      const server = await kit.nextServer();
      await server.acceptStream(`<mechanisms xmlns='${NS_SASL}'><mechanism>PLAIN</mechanism></mechanisms>`);
      await kit.settle();
      assert.equal(kit.events.faults[0]?.code, "tls_unavailable");
      await server.expectNothing();
      assert.doesNotMatch(server.written, /<auth/);
      await kit.stop();
    });

    it("upgrades a plain link with STARTTLS, then logs in", async () => {
      const kit = sessionKit({ secure: false });
      const server = await kit.online();
      assert.equal(server.tlsUpgraded, true);
      assert.match(server.written, /<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"\/>/);
      await kit.stop();
    });

    it("gives up when the server refuses STARTTLS", async () => {
      const kit = sessionKit({ secure: false });
      kit.session.start();
      const server = await kit.nextServer();
      await server.acceptStream(`<starttls xmlns='${NS_TLS}'/>`);
      await server.expect("starttls");
      server.send(`<failure xmlns='${NS_TLS}'/>`);
      await kit.settle();
      assert.equal(kit.events.faults[0]?.code, "tls_refused");
      await kit.stop();
    });

    it("with directTls, refuses a link that is not encrypted", async () => {
      const kit = sessionKit({ secure: false, config: { directTls: true } });
      kit.session.start();
      const server = await kit.nextServer();
      await server.acceptStream(`<starttls xmlns='${NS_TLS}'/>`);
      await kit.settle();
      assert.equal(kit.events.faults[0]?.code, "tls_unavailable");
      await server.expectNothing();
      await kit.stop();
    });
  });
});
