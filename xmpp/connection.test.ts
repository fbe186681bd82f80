import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Element } from "ltx";
import type { AgentError } from "../kernel/errors.js";
import { Connection } from "./connection.js";
import { FakeLink, KitClock, settle } from "./testing/index.js";

const LIMITS = { maxStanzaBytes: 4096, maxDepth: 16 };
const HEADER =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='iot.test' version='1.0'>";

/** A Connection over an in-memory link whose far end only records (it never closes on its own). */
function setup(opts: { secure?: boolean } = {}) {
  const clock = new KitClock();
  const peer = { written: "", ended: false };
  const link = new FakeLink(
    {
      onWrite: (t) => {
        peer.written += t;
      },
      onEnd: () => {
        peer.ended = true;
      },
    },
    opts.secure ?? true,
  );
  const conn = new Connection(link, "iot.test", LIMITS, { timers: clock });
  const closes: (AgentError | undefined)[] = [];
  conn.on("close", (e) => closes.push(e));
  return { clock, peer, link, conn, closes };
}

describe("Connection", () => {
  it("opens the stream and hands out elements in order, then to the handler", async () => {
    const { link, conn, peer } = setup();
    const opened = conn.open(1000);
    assert.match(peer.written, /^<\?xml version='1.0'\?><stream:stream to='iot.test' version='1.0'/);
    link.receive(`${HEADER}<stream:features><a/></stream:features><b/>`);
    assert.deepEqual(await opened, { id: "s1", from: "iot.test", version: "1.0" });
    assert.equal((await conn.next(1000, "features")).name, "stream:features");
    link.receive("<c/>");
    const seen: string[] = [];
    conn.setHandler((el) => seen.push(el.name));
    link.receive("<d/>");
    assert.deepEqual(seen, ["b", "c", "d"]);
  });

  it("times out open() and next() on its clock", async () => {
    const { clock, link, conn } = setup();
    const opened = conn.open(1000);
    opened.catch(() => undefined);
    await clock.advance(1000);
    await assert.rejects(opened, (e: AgentError) => e.code === "negotiation_timeout");
    const reopened = conn.open(1000);
    link.receive(HEADER);
    await reopened;
    const next = conn.next(500, "<bind/>");
    next.catch(() => undefined);
    await clock.advance(500);
    await assert.rejects(next, (e: AgentError) => e.code === "negotiation_timeout" && e.context.step === "<bind/>");
    assert.equal(clock.pendingCount, 0);
  });

  it("reports a stream error once, with its condition and text", async () => {
    const { link, conn, closes } = setup();
    const opened = conn.open(1000);
    link.receive(HEADER);
    await opened;
    const next = conn.next(1000, "anything");
    link.receive(
      "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no</text></stream:error>",
    );
    await assert.rejects(next, (e: AgentError) => e.code === "stream_error" && e.context.condition === "host-unknown");
    link.hangUp();
    await settle();
    assert.equal(closes.length, 1);
    assert.equal(closes[0]?.context.text, "no");
  });

  it("drops the link on malformed XML without a stream error", async () => {
    const { link, conn, closes, peer } = setup();
    const opened = conn.open(1000);
    link.receive(HEADER);
    await opened;
    conn.setHandler(() => assert.fail("nothing half-parsed goes up"));
    link.receive("<message><body>x</bogus></message>");
    await settle();
    assert.equal(closes[0]?.code, "xml_malformed");
    assert.doesNotMatch(peer.written, /stream:error/);
    assert.equal(link.destroyed, true);
  });

  it("answers the server's </stream:stream> and closes", async () => {
    const { link, conn, closes, peer } = setup();
    const opened = conn.open(1000);
    link.receive(HEADER);
    await opened;
    link.receive("</stream:stream>");
    assert.equal(closes[0]?.code, "stream_closed");
    assert.match(peer.written, /<\/stream:stream>$/);
    assert.equal(peer.ended, true);
  });

  it("close(): </stream:stream>, then the socket is destroyed after the grace time unless the peer closes first", async () => {
    const a = setup();
    a.conn.close(200);
    assert.match(a.peer.written, /<\/stream:stream>$/);
    assert.equal(a.closes[0]?.code, "closed_locally");
    await a.clock.advance(199);
    assert.equal(a.link.destroyed, false);
    await a.clock.advance(1);
    assert.equal(a.link.destroyed, true);
    a.conn.close();
    assert.equal(a.closes.length, 1, "exactly one close");

    const b = setup();
    b.conn.close(200);
    b.link.hangUp();
    await settle();
    assert.equal(b.link.destroyed, true);
    assert.equal(b.clock.pendingCount, 0, "the grace timer went with the socket");
  });

  it("STARTTLS swaps the socket through the injected upgrade", async () => {
    const clock = new KitClock();
    const plain = new FakeLink({ onWrite: () => undefined, onEnd: () => undefined }, false);
    const secure = new FakeLink({ onWrite: () => undefined, onEnd: () => undefined }, true);
    const conn = new Connection(plain, "iot.test", LIMITS, {
      timers: clock,
      tlsUpgrade: async (p, opts, ms) => {
        assert.equal(p, plain);
        assert.deepEqual([opts.servername, ms], ["iot.test", 750]);
        return secure;
      },
    });
    assert.equal(conn.secure, false);
    assert.equal(conn.tlsSocket === undefined, true);
    await conn.startTls({ servername: "iot.test" }, 750);
    assert.equal(conn.secure, true);
    assert.equal(conn.tlsSocket?.getProtocol(), "TLSv1.3");
    const got: Element[] = [];
    conn.setHandler((el) => got.push(el));
    const opened = conn.open(1000);
    plain.receive(HEADER); // the old socket is no longer read
    secure.receive(HEADER);
    await opened;
    secure.receive("<x/>");
    assert.deepEqual(
      got.map((e) => e.name),
      ["x"],
    );
  });
});
