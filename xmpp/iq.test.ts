import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Element, parse } from "ltx";
import type { AgentError } from "../kernel/errors.js";
import { FakeTimers } from "../kernel/timers.js";
import { IqCaller } from "./iq.js";
import { NS_STANZAS, StanzaError } from "./stanza-error.js";
import { type FakeServer, sessionKit } from "./testing/index.js";

function caller(timers = new FakeTimers(), maxPending = 4) {
  return new IqCaller({
    timers,
    maxPending,
    defaultTimeoutMs: 1000,
    self: () => ({ bare: "device@iot.test", domain: "iot.test" }),
  });
}

function get(to: string | undefined, id?: string): Element {
  return new Element("iq", { type: "get", ...(to ? { to } : {}), ...(id ? { id } : {}) }).c("ping").root();
}

describe("IqCaller", () => {
  it("matches an answer by id and by sender", async () => {
    const c = caller();
    const p = c.track(get("pubsub.iot.test", "q1"));
    assert.equal(c.handleAnswer(parse("<iq type='result' id='q1' from='intruder@iot.test/x'/>")), false);
    assert.equal(c.handleAnswer(parse("<iq type='result' id='q2' from='pubsub.iot.test'/>")), false);
    assert.equal(c.outstanding, 1);
    assert.equal(c.handleAnswer(parse("<iq type='result' id='q1' from='PubSub.iot.test'/>")), true);
    assert.equal((await p).attrs.from, "PubSub.iot.test");
  });

  it("takes an answer without `from` for a request to our own server or account (RFC 6120 §10.3.3)", async () => {
    const c = caller();
    const a = c.track(get(undefined, "a"));
    const b = c.track(get("iot.test", "b"));
    const d = c.track(get("device@iot.test", "d"));
    for (const id of ["a", "b", "d"]) assert.equal(c.handleAnswer(parse(`<iq type='result' id='${id}'/>`)), true);
    await Promise.all([a, b, d]);
    const other = c.track(get("peer@iot.test", "e"));
    assert.equal(c.handleAnswer(parse("<iq type='result' id='e'/>")), false);
    c.rejectAll(new Error("stopped"));
    await assert.rejects(other, /stopped/);
  });

  it("turns an error answer into iq_error with the condition", async () => {
    const c = caller();
    const p = c.track(get("peer@iot.test", "x"));
    c.handleAnswer(
      parse(
        `<iq type='error' id='x' from='peer@iot.test'><error type='cancel'><item-not-found xmlns='${NS_STANZAS}'/><text xmlns='${NS_STANZAS}'>gone</text></error></iq>`,
      ),
    );
    await assert.rejects(p, (e: AgentError) => {
      assert.equal(e.code, "iq_error");
      assert.deepEqual(e.context, {
        id: "x",
        to: "peer@iot.test",
        condition: "item-not-found",
        type: "cancel",
        text: "gone",
      });
      return true;
    });
  });

  it("times out on the injected clock, bounds what is outstanding, refuses a duplicate id", async () => {
    const timers = new FakeTimers();
    const c = caller(timers, 2);
    const p = c.track(get("peer@iot.test", "t"), 500);
    await assert.rejects(c.track(get("peer@iot.test", "t")), (e: AgentError) => e.code === "iq_duplicate_id");
    c.track(get("peer@iot.test", "u")).catch(() => undefined);
    await assert.rejects(c.track(get("peer@iot.test", "v")), (e: AgentError) => e.code === "iq_too_many");
    timers.advance(500);
    await assert.rejects(p, (e: AgentError) => e.code === "iq_timeout" && e.context.timeoutMs === 500);
    c.rejectAll(new Error("stopped"));
    assert.equal(timers.pendingCount, 0);
  });

  it("fails a request at once when its answer was skipped over a limit", async () => {
    const c = caller();
    const p = c.track(get("peer@iot.test", "big"));
    const reason = new StanzaError("not-acceptable", "modify");
    assert.equal(c.failAnswer(parse("<iq type='result' id='big' from='stranger@iot.test'/>"), reason), false);
    assert.equal(c.failAnswer(parse("<iq type='result' id='big' from='peer@iot.test'/>"), reason), true);
    await assert.rejects(p, (e) => e === reason);
  });
});

/** The stanza-error condition of an <iq type='error'/>. */
function condition(iq: Element): string | undefined {
  return iq.getChild("error")?.children.find((c): c is Element => typeof c !== "string" && c.name !== "text")?.name;
}

const unread = new WeakMap<FakeServer, Element[]>();

/** The client's IQ with this id; answers come in any order (handlers are async). */
async function answer(server: FakeServer, id: string): Promise<Element> {
  const seen = unread.get(server) ?? [];
  unread.set(server, seen);
  for (;;) {
    const i = seen.findIndex((e) => e.attrs.id === id);
    if (i >= 0) return seen.splice(i, 1)[0]!;
    seen.push(await server.expect("iq"));
  }
}

describe("IQ routing through the session (in-process)", () => {
  it("answers unknown payloads service-unavailable and malformed requests bad-request", async () => {
    const kit = sessionKit();
    const server = await kit.online();
    server.sendStanza("<iq type='get' id='u' from='peer@iot.test/x'><query xmlns='urn:unknown'/></iq>");
    server.sendStanza("<iq type='set' id='two' from='peer@iot.test/x'><a xmlns='urn:t'/><b xmlns='urn:t'/></iq>");
    server.sendStanza("<iq type='get' id='none' from='peer@iot.test/x'/>");
    const u = await answer(server, "u");
    assert.deepEqual([u.attrs.type, u.attrs.to, condition(u)], ["error", "peer@iot.test/x", "service-unavailable"]);
    assert.equal(condition(await answer(server, "two")), "bad-request");
    assert.equal(condition(await answer(server, "none")), "bad-request");
    await kit.stop();
  });

  it("answers what a handler returns, internal-server-error when it throws, its StanzaError as is", async () => {
    const kit = sessionKit();
    kit.session.handleIq("get", "query", "urn:ok", async () =>
      new Element("query", { xmlns: "urn:ok" }).c("v").t("1").root(),
    );
    kit.session.handleIq("get", "query", "urn:bug", async () => {
      throw new TypeError("x is undefined");
    });
    kit.session.handleIq("set", "query", "urn:no", async () => {
      throw new StanzaError("not-allowed", "cancel", "not you");
    });
    const server = await kit.online();
    server.sendStanza("<iq type='get' id='ok' from='peer@iot.test/x'><query xmlns='urn:ok'/></iq>");
    server.sendStanza("<iq type='get' id='bug' from='peer@iot.test/x'><query xmlns='urn:bug'/></iq>");
    server.sendStanza("<iq type='set' id='no' from='peer@iot.test/x'><query xmlns='urn:no'/></iq>");
    const ok = await answer(server, "ok");
    assert.equal(ok.attrs.type, "result");
    assert.equal(ok.getChild("query", "urn:ok")?.getChildText("v"), "1");
    const bug = await answer(server, "bug");
    assert.equal(condition(bug), "internal-server-error");
    assert.doesNotMatch(bug.toString(), /x is undefined/, "the bug's details stay in the device log");
    const no = await answer(server, "no");
    assert.equal(condition(no), "not-allowed");
    assert.equal(no.getChild("error")?.getChildText("text", NS_STANZAS), "not you");
    await kit.stop();
  });

  it("answers resource-constraint beyond limits.maxPendingIq requests in progress", async () => {
    const kit = sessionKit({ config: { limits: { maxPendingIq: 2 } } });
    const release: (() => void)[] = [];
    kit.session.handleIq("get", "query", "urn:slow", () => new Promise((r) => release.push(() => r(undefined))));
    const server = await kit.online();
    for (const id of ["s1", "s2", "s3"])
      server.sendStanza(`<iq type='get' id='${id}' from='peer@iot.test/x'><query xmlns='urn:slow'/></iq>`);
    const s3 = await answer(server, "s3");
    assert.equal(condition(s3), "resource-constraint");
    assert.equal(s3.getChild("error")?.attrs.type, "wait");
    for (const r of release) r();
    assert.equal((await answer(server, "s1")).attrs.type, "result");
    assert.equal((await answer(server, "s2")).attrs.type, "result");
    server.sendStanza("<iq type='get' id='s4' from='peer@iot.test/x'><query xmlns='urn:slow'/></iq>");
    await kit.settle();
    assert.equal(release.length, 3, "the slots came back");
    release[2]!();
    assert.equal((await answer(server, "s4")).attrs.type, "result");
    await kit.stop();
  });

  it("matches answers to our requests by id and sender, and times them out on the clock", async () => {
    const kit = sessionKit({ config: { timeouts: { iqMs: 3000 } } });
    const server = await kit.online();
    const asked = kit.session.request(
      new Element("iq", { type: "get", to: "pubsub.iot.test", id: "q1" }).c("ping").root(),
    );
    const late = kit.session.request(
      new Element("iq", { type: "get", to: "peer@iot.test/x", id: "q2" }).c("ping").root(),
    );
    late.catch(() => undefined);
    await answer(server, "q1");
    server.sendStanza("<iq type='result' id='q1' from='intruder@iot.test/x'/>");
    await kit.settle();
    let settled = false;
    asked.then(() => (settled = true)).catch(() => undefined);
    await kit.settle();
    assert.equal(settled, false, "an answer from someone else is not the answer");
    server.sendStanza("<iq type='result' id='q1' from='pubsub.iot.test'/>");
    assert.equal((await asked).attrs.from, "pubsub.iot.test");
    await kit.clock.advance(3000);
    await assert.rejects(late, (e: AgentError) => e.code === "iq_timeout");
    await kit.stop();
  });

  it("answers an IQ request over a limit without reading it, and fails our request whose answer was", async () => {
    const kit = sessionKit({ config: { limits: { maxStanzaBytes: 1024, maxDepth: 8 } } });
    const server = await kit.online();
    server.sendStanza(
      `<iq type='get' id='big' from='peer@iot.test/x'><query xmlns='urn:t'>${"y".repeat(2000)}</query></iq>`,
    );
    server.sendStanza(
      `<iq type='get' id='deep' from='peer@iot.test/x'><query xmlns='urn:t'>${"<a>".repeat(10)}${"</a>".repeat(10)}</query></iq>`,
    );
    const big = await answer(server, "big");
    assert.equal(condition(big), "not-acceptable");
    assert.equal(big.attrs.to, "peer@iot.test/x");
    assert.equal(condition(await answer(server, "deep")), "policy-violation");
    const mine = kit.session.request(
      new Element("iq", { type: "get", to: "peer@iot.test/x", id: "q" }).c("ping").root(),
    );
    await answer(server, "q");
    server.sendStanza(`<iq type='result' id='q' from='peer@iot.test/x'><r>${"z".repeat(2000)}</r></iq>`);
    await assert.rejects(mine, (e: AgentError) => e.code === "stanza_too_large");
    assert.equal(kit.session.stats().stanzasSkipped, 3);
    assert.deepEqual(kit.events.offline, [], "the link stayed up");
    await kit.stop();
  });

  it("answers a stranger over its budget resource-constraint at most once a second, an operator not at all", async () => {
    const kit = sessionKit({
      config: { inbound: { stranger: { perSecond: 1, burst: 2 } } },
      session: { isOperator: (jid) => jid.startsWith("op@") },
    });
    const server = await kit.online();
    for (let i = 0; i < 5; i++)
      server.sendStanza(`<iq type='get' id='x${i}' from='stranger@iot.test/x'><ping xmlns='urn:xmpp:ping'/></iq>`);
    for (let i = 0; i < 5; i++)
      server.sendStanza(`<iq type='get' id='o${i}' from='op@iot.test/x'><ping xmlns='urn:xmpp:ping'/></iq>`);
    const out = (await server.drain()).filter((e) => e.name === "iq");
    assert.deepEqual(
      out.map((e) => `${e.attrs.id} ${e.attrs.type}${e.attrs.type === "error" ? ` ${condition(e)}` : ""}`).sort(),
      [
        "o0 result",
        "o1 result",
        "o2 result",
        "o3 result",
        "o4 result",
        "x0 result",
        "x1 result",
        "x2 error resource-constraint",
      ],
    );
    assert.equal(kit.session.stats().inbound.droppedFromStrangers, 3);
    await kit.stop();
  });

  it("answers to our own requests spend no budget; unsolicited ones from the same stranger do", async () => {
    const kit = sessionKit({ config: { inbound: { stranger: { perSecond: 1, burst: 2 } } } });
    const server = await kit.online();
    const mine = Array.from({ length: 6 }, (_, i) =>
      kit.session.request(new Element("iq", { type: "get", to: "dev@iot.test/agent", id: `m${i}` }).c("ping").root()),
    );
    for (let i = 0; i < 6; i++) await answer(server, `m${i}`);
    for (let i = 0; i < 6; i++) server.sendStanza(`<iq type='result' id='m${i}' from='dev@iot.test/agent'/>`);
    assert.equal((await Promise.all(mine)).length, 6, "all six answers taken");
    // A second answer to the same id, or an answer from another account, is not solicited.
    for (let i = 0; i < 4; i++) server.sendStanza(`<iq type='result' id='m${i}' from='dev@iot.test/agent'/>`);
    await server.drain();
    assert.equal(kit.session.stats().inbound.droppedFromStrangers, 2, "the budget (burst 2) still bounds the rest");
    await kit.stop();
  });

  it("tells the software's name and version to operators only", async () => {
    const kit = sessionKit({
      session: { isOperator: (jid) => jid.startsWith("op@"), software: { name: "iot-agent", version: "1.2.3" } },
    });
    const server = await kit.online();
    for (const who of ["op", "stranger"]) {
      server.sendStanza(
        `<iq type='get' id='${who}-v' from='${who}@iot.test/x'><query xmlns='jabber:iq:version'/></iq>`,
      );
      server.sendStanza(
        `<iq type='get' id='${who}-i' from='${who}@iot.test/x'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
      );
    }
    assert.equal((await answer(server, "op-v")).getChild("query")?.getChildText("version"), "1.2.3");
    assert.equal((await answer(server, "op-i")).getChild("query")?.getChild("identity")?.attrs.name, "iot-agent");
    assert.equal(condition(await answer(server, "stranger-v")), "service-unavailable");
    const info = await answer(server, "stranger-i");
    assert.equal(info.getChild("query")?.getChild("identity")?.attrs.name, undefined);
    assert.ok(
      info
        .getChild("query")
        ?.getChildren("feature")
        .some((f) => f.attrs.var === "urn:xmpp:ping"),
    );
    await kit.stop();
  });
});
