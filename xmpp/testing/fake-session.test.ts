import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Element, parse } from "ltx";
import { isAgentError } from "../../kernel/errors.js";
import { FakeSession } from "./fake-session.js";

const get = (ns = "urn:x") => new Element("iq", { type: "get" }).c("query", { xmlns: ns }).root();

describe("FakeSession (the session double)", () => {
  it("answers by policy: result with an id, payload, stanza error, session error", async () => {
    const s = new FakeSession();
    const r = await s.request(get());
    assert.equal(r.attrs.type, "result");
    assert.equal(r.attrs.id, s.requests[0]!.attrs.id, "the request got an id and the answer carries it");
    s.policy = () => ({ result: parse("<form xmlns='jabber:x:data'/>") as Element });
    assert.equal((await s.request(get())).getChild("form")?.attrs.xmlns, "jabber:x:data");
    s.policy = () => ({ error: "forbidden", type: "auth", text: "no" });
    await assert.rejects(s.request(get()), (e: unknown) => {
      assert.ok(isAgentError(e, "iq_error"));
      assert.deepEqual(e.context, { condition: "forbidden", type: "auth", text: "no" });
      return true;
    });
    s.policy = () => ({ code: "iq_timeout" });
    await assert.rejects(s.request(get()), (e: unknown) => isAgentError(e, "iq_timeout"));
    assert.equal(s.requests.length, 4);
  });

  it("holds requests until released, then answers them all", async () => {
    const s = new FakeSession();
    s.policy = () => "hold";
    const answers: string[] = [];
    const note = (p: Promise<Element>) =>
      p.then(
        (r) => answers.push(r.attrs.type),
        (e: { code: string }) => answers.push(e.code),
      );
    const both = Promise.all([note(s.request(get())), note(s.request(get()))]);
    await new Promise((r) => setImmediate(r));
    assert.equal(s.held.length, 2);
    assert.deepEqual(answers, []);
    s.release({ code: "session_closed" });
    await both;
    assert.deepEqual(answers, ["session_closed", "session_closed"]);
    assert.equal(s.held.length, 0);
  });

  it("a responder answers instead of the policy; a thrown error rejects the request", async () => {
    const s = new FakeSession(() => {
      throw new Error("boom");
    });
    await assert.rejects(s.request(get()), /boom/);
    s.responder = (iq) => new Element("iq", { type: "result", id: iq.attrs.id, from: "x" });
    assert.equal((await s.request(get())).attrs.from, "x");
  });

  it("delivers inbound IQs to the handler for their payload, as the session's router does", async () => {
    const s = new FakeSession();
    const off = s.handleIq("get", "query", "urn:x", async (iq) => new Element("answered", { to: iq.attrs.from }));
    assert.throws(
      () => s.handleIq("get", "query", "urn:x", async () => undefined),
      (e: unknown) => isAgentError(e, "iq_handler_exists"),
    );
    const iq = get();
    iq.attrs.from = "op@iot.test/x";
    assert.equal(((await s.deliver(iq)) as Element).attrs.to, "op@iot.test/x");
    await assert.rejects(s.deliver(get("urn:other")), (e: { condition?: string }) => {
      assert.equal(e.condition, "service-unavailable");
      return true;
    });
    off();
    assert.equal(s.handlers.size, 0);
  });

  it("emits the session's online and offline events, keeps the password, counts prompt retries", () => {
    const s = new FakeSession();
    const seen: string[] = [];
    s.on("online", (info) => seen.push(`online ${info.jid}`));
    s.on("offline", (info) => seen.push(`offline ${info.reason}`));
    s.setOnline(false);
    assert.equal(s.online, false);
    s.setOnline(true);
    assert.deepEqual(seen, ["offline test", "online dev1@iot.test/agent"]);
    s.setPassword("pw");
    s.retryNow();
    assert.equal(s.password, "pw");
    assert.equal(s.retries, 1);
  });
});
