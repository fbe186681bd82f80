/**
 * SASL2 (XEP-0388), FAST (XEP-0484), Bind2 (XEP-0386) and XEP-0198 inline, in-process: the session
 * against a scripted server end. The real Prosody with prosody-modules is test/xmpp/sasl2-prosody;
 * the inline XEP-0198 paths (resume and enable inside SASL2) are only here, since Prosody 0.12
 * cannot run mod_sasl2_sm (docs/servers.md).
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, it } from "node:test";
import type { Element } from "ltx";
import { type FastToken, MemoryFastTokenStore } from "./fast-token.js";
import { NS_BIND } from "./negotiate.js";
import { bestHtMechanism, HtMechanism } from "./sasl/ht.js";
import { authenticateElement, NS_BIND2, NS_FAST, NS_SASL2, sasl2Offer } from "./sasl2.js";
import { NS_SM } from "./stream-management.js";
import { sessionKit } from "./testing/index.js";
import type { FakeServer } from "./testing/fake-server.js";

const TOKEN = "secret-token:fast-abc";
const hmac = (label: string) => createHmac("sha256", TOKEN).update(label).digest();

function storeWith(token?: FastToken): MemoryFastTokenStore {
  const s = new MemoryFastTokenStore();
  if (token) s.saveToken(token);
  return s;
}

function features(inline: string): string {
  return `<authentication xmlns='${NS_SASL2}'><mechanism>SCRAM-SHA-1</mechanism><inline>${inline}</inline></authentication>`;
}

const FAST = `<fast xmlns='${NS_FAST}'><mechanism>HT-SHA-256-NONE</mechanism></fast>`;

/** The server's side of a FAST <authenticate/>: checks the client's proof, answers <success/>. */
async function acceptFast(server: FakeServer, extra = "", jid = "device@iot.test"): Promise<Element> {
  const auth = await server.expect("authenticate", NS_SASL2);
  assert.equal(auth.attrs.mechanism, "HT-SHA-256-NONE");
  assert.ok(auth.getChild("fast", NS_FAST), "<fast/> marks a token login");
  const initial = Buffer.from(auth.getChildText("initial-response") ?? "", "base64");
  assert.deepEqual(initial, Buffer.concat([Buffer.from("device\0"), hmac("Initiator")]));
  server.send(
    `<success xmlns='${NS_SASL2}'><additional-data>${hmac("Responder").toString("base64")}</additional-data><authorization-identifier>${jid}</authorization-identifier>${extra}</success>`,
  );
  return auth;
}

const fresh = (): FastToken => ({ mechanism: "HT-SHA-256-NONE", secret: TOKEN, expiresAt: Date.now() + 86_400_000 });

describe("HT-SHA-256 (FAST)", () => {
  it("proves the token both ways and refuses a server that does not know it", () => {
    const m = new HtMechanism("HT-SHA-256-NONE", "device", TOKEN, undefined);
    assert.deepEqual(m.initialResponse(), Buffer.concat([Buffer.from("device\0"), hmac("Initiator")]));
    m.verifySuccess(hmac("Responder"));
    assert.throws(() => m.verifySuccess(hmac("Initiator")), { code: "sasl_server_signature" });
    assert.throws(() => m.verifySuccess(null), { code: "sasl_server_signature" });
  });

  it("mixes in channel-binding data for -EXPR and -UNIQ, and picks the strongest the link can run", () => {
    const cb = Buffer.alloc(32, 7);
    const m = new HtMechanism("HT-SHA-256-EXPR", "device", TOKEN, cb);
    const expected = createHmac("sha256", TOKEN)
      .update(Buffer.concat([Buffer.from("Initiator"), cb]))
      .digest();
    assert.deepEqual(m.initialResponse().subarray(7), expected);
    assert.throws(() => new HtMechanism("HT-SHA-256-UNIQ", "device", TOKEN, undefined), {
      code: "sasl_channel_binding",
    });
    const offered = ["HT-SHA-256-NONE", "HT-SHA-256-UNIQ", "HT-SHA-256-EXPR"];
    assert.equal(bestHtMechanism(offered, { "tls-exporter": cb }), "HT-SHA-256-EXPR");
    assert.equal(bestHtMechanism(offered, { "tls-unique": cb }), "HT-SHA-256-UNIQ");
    assert.equal(bestHtMechanism(offered, {}), "HT-SHA-256-NONE");
    assert.equal(bestHtMechanism(["HT-SHA-256-EXPR"], {}), undefined);
  });
});

describe("SASL2 offer and request", () => {
  it("reads mechanisms, FAST, Bind2 and inline XEP-0198 from the features", async () => {
    const { parse } = await import("ltx");
    const offer = sasl2Offer(
      parse(
        `<stream:features xmlns:stream='http://etherx.jabber.org/streams'>${features(`${FAST}<sm xmlns='${NS_SM}'/><bind xmlns='${NS_BIND2}'><inline><feature var='${NS_SM}'/></inline></bind>`)}</stream:features>`,
      ) as Element,
    );
    assert.deepEqual(offer, {
      mechanisms: ["SCRAM-SHA-1"],
      fast: ["HT-SHA-256-NONE"],
      bind2: true,
      bind2Sm: true,
      sm: true,
    });
    const el = authenticateElement({
      mechanism: new HtMechanism("HT-SHA-256-NONE", "device", TOKEN, undefined),
      withToken: true,
      requestToken: undefined,
      userAgent: { id: "ua-1", software: "xmpp-iot-agent" },
      bind: { tag: "agent", enableSm: { resumeMaxSeconds: 600 } },
      resume: undefined,
      stepTimeoutMs: 1000,
    });
    assert.equal(el.getChild("user-agent")?.attrs.id, "ua-1");
    assert.equal(el.getChild("bind", NS_BIND2)?.getChildText("tag"), "agent");
    assert.ok(el.getChild("bind", NS_BIND2)?.getChild("enable", NS_SM));
  });
});

describe("SASL2 in the session (in-process)", () => {
  it("logs in with a stored FAST token, binds and enables the classic way after <success/> (no restart)", async () => {
    const tokens = storeWith(fresh());
    const kit = sessionKit({ session: { fastTokens: tokens } });
    kit.session.start();
    const server = await kit.nextServer();
    const header = await server.acceptStream(features(FAST));
    assert.equal(header.attrs.from, "device@iot.test", "the encrypted stream names us (FAST needs it)");
    const auth = await acceptFast(server);
    assert.equal(auth.getChild("request-token", NS_FAST), undefined, "no new token asked when one works");
    assert.equal(auth.getChild("user-agent")?.attrs.id, tokens.clientId());
    server.send(`<stream:features><bind xmlns='${NS_BIND}'/><sm xmlns='${NS_SM}'/></stream:features>`);
    const bind = await server.expect("iq");
    server.send(
      `<iq type='result' id='${bind.attrs.id}'><bind xmlns='${NS_BIND}'><jid>device@iot.test/agent</jid></bind></iq>`,
    );
    await server.expect("enable", NS_SM);
    server.send(`<enabled xmlns='${NS_SM}' id='sm-1' resume='true'/>`);
    await kit.settle();
    assert.deepEqual(kit.events.online, [{ resumed: false, jid: "device@iot.test/agent" }]);
    assert.equal(kit.session.stats().mechanism, "HT-SHA-256-NONE");
    await kit.stop();
  });

  it("keeps the token the server rotates in a FAST login's <success/>", async () => {
    const tokens = storeWith(fresh());
    const kit = sessionKit({ session: { fastTokens: tokens }, config: { streamManagement: { enabled: false } } });
    kit.session.start();
    const server = await kit.nextServer();
    await server.acceptStream(features(FAST));
    await acceptFast(
      server,
      `<token xmlns='${NS_FAST}' expiry='2027-01-01T00:00:00Z' token='secret-token:fast-next'/>`,
    );
    await kit.settle();
    assert.deepEqual(tokens.token(), {
      mechanism: "HT-SHA-256-NONE",
      secret: "secret-token:fast-next",
      expiresAt: Date.parse("2027-01-01T00:00:00Z"),
    });
    await kit.stop();
  });

  it("resumes inline when offered, and binds and enables inside Bind2: one exchange each", async () => {
    const tokens = storeWith(fresh());
    const kit = sessionKit({ session: { fastTokens: tokens }, config: { sasl2: { bind2: true } } });
    kit.session.start();
    const inline = `${FAST}<sm xmlns='${NS_SM}'/><bind xmlns='${NS_BIND2}'><inline><feature var='${NS_SM}'/></inline></bind>`;
    let server = await kit.nextServer();
    await server.acceptStream(features(inline));
    const auth = await acceptFast(
      server,
      `<bound xmlns='${NS_BIND2}'><enabled xmlns='${NS_SM}' id='sm-b2' resume='true'/></bound>`,
      "device@iot.test/agent~x1",
    );
    assert.ok(auth.getChild("bind", NS_BIND2)?.getChild("enable", NS_SM), "enable rides in Bind2");
    await kit.settle();
    assert.equal(kit.events.online.length, 1);
    assert.equal(kit.session.stats().smEnabled, true);

    server.reset();
    await kit.clock.advance(2000);
    server = await kit.nextServer();
    await server.acceptStream(features(inline));
    const again = await acceptFast(server, `<resumed xmlns='${NS_SM}' previd='sm-b2' h='0'/>`);
    assert.equal(again.getChild("resume", NS_SM)?.attrs.previd, "sm-b2");
    await kit.settle();
    assert.deepEqual(kit.events.online[1], { resumed: true, jid: "device@iot.test/agent~x1" });
    await kit.stop();
  });

  it("drops a token the server refuses and logs in with the password next time, without a fault", async () => {
    const tokens = storeWith(fresh());
    const kit = sessionKit({ session: { fastTokens: tokens } });
    kit.session.start();
    const server = await kit.nextServer();
    await server.acceptStream(features(FAST));
    await server.expect("authenticate", NS_SASL2);
    server.send(
      `<failure xmlns='${NS_SASL2}'><credentials-expired xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></failure>`,
    );
    await kit.settle();
    assert.equal(tokens.token(), undefined);
    assert.deepEqual(kit.events.faults, []);
    await kit.clock.advance(2000);
    const next = await kit.nextServer();
    await next.acceptStream(features(FAST));
    const auth = await next.expect("authenticate", NS_SASL2);
    assert.equal(auth.attrs.mechanism, "SCRAM-SHA-1");
    assert.equal(auth.getChild("request-token", NS_FAST)?.attrs.mechanism, "HT-SHA-256-NONE");
    await kit.stop();
  });

  it("refuses a server whose answer does not prove it knows the token (an impostor)", async () => {
    const kit = sessionKit({ session: { fastTokens: storeWith(fresh()) } });
    kit.session.start();
    const server = await kit.nextServer();
    await server.acceptStream(features(FAST));
    await server.expect("authenticate", NS_SASL2);
    server.send(
      `<success xmlns='${NS_SASL2}'><additional-data>${Buffer.alloc(32).toString("base64")}</additional-data></success>`,
    );
    await kit.settle();
    assert.equal(kit.events.faults[0]?.code, "sasl_server_signature");
    await kit.stop();
  });
});
