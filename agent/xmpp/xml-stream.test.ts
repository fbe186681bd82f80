import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Element } from "ltx";
import { XmlStreamParser, type XmlStreamError } from "./xml-stream.js";

const HEADER =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' version='1.0' from='iot.test'>";

function harness(limits = { maxStanzaBytes: 4096, maxDepth: 8 }) {
  const p = new XmlStreamParser(limits);
  const elements: Element[] = [];
  const errors: XmlStreamError[] = [];
  let started: Record<string, string> | undefined;
  let ended = false;
  p.on("streamStart", (a) => {
    started = a;
  });
  p.on("element", (e) => elements.push(e));
  p.on("invalid", (e) => errors.push(e));
  p.on("streamEnd", () => {
    ended = true;
  });
  return { p, elements, errors, started: () => started, ended: () => ended };
}

describe("XmlStreamParser", () => {
  it("emits the header, whole stanzas and the end", () => {
    const h = harness();
    h.p.write(HEADER);
    h.p.write("<message to='a@b'><body>hi &amp; bye</body></message> \n<r xmlns='urn:xmpp:sm:3'/>");
    h.p.write("</stream:stream>");
    assert.equal(h.started()?.id, "s1");
    assert.equal(h.elements.length, 2);
    assert.equal(h.elements[0]!.getChildText("body"), "hi & bye");
    assert.equal(h.elements[1]!.attrs.xmlns, "urn:xmpp:sm:3");
    assert.ok(h.ended());
    assert.equal(h.errors.length, 0);
  });

  it("never emits a half-built stanza, byte by byte", () => {
    const h = harness();
    const input = Buffer.from(`${HEADER}<message><body>grüße ✓ 😀</body></message>`);
    for (let i = 0; i < input.length; i++) {
      h.p.write(input.subarray(i, i + 1));
      if (i < input.length - 1) assert.equal(h.elements.length, 0);
    }
    assert.equal(h.elements[0]!.getChildText("body"), "grüße ✓ 😀");
  });

  it("rejects an oversized stanza, even one that never ends", () => {
    const h = harness({ maxStanzaBytes: 2048, maxDepth: 8 });
    h.p.write(HEADER);
    h.p.write("<message><body>");
    for (let i = 0; i < 10; i++) h.p.write("x".repeat(500));
    assert.equal(h.errors[0]?.code, "stanza_too_large");
    assert.equal(h.elements.length, 0);
  });

  it("resets the size budget per stanza", () => {
    const h = harness({ maxStanzaBytes: 2048, maxDepth: 8 });
    h.p.write(HEADER);
    for (let i = 0; i < 20; i++) h.p.write(`<message><body>${"y".repeat(900)}</body></message>`);
    assert.equal(h.errors.length, 0);
    assert.equal(h.elements.length, 20);
  });

  it("rejects deep nesting", () => {
    const h = harness({ maxStanzaBytes: 4096, maxDepth: 4 });
    h.p.write(`${HEADER}<a><b><c><d><e/></d></c></b></a>`);
    assert.equal(h.errors[0]?.code, "stanza_too_deep");
  });

  it("rejects mismatched end tags, stray text, bad entities and a bad header", () => {
    for (const [input, code] of [
      [`${HEADER}<message><body></message>`, "xml_malformed"],
      [`${HEADER}hello<message/>`, "xml_malformed"],
      [`${HEADER}<message><body>&bogus;</body></message>`, "xml_malformed"],
      ["<html><body>", "xml_bad_stream_header"],
    ] as const) {
      const h = harness();
      h.p.write(input);
      assert.equal(h.errors[0]?.code, code, input);
      assert.equal(h.elements.length, 0, input);
    }
  });

  it("ignores input after an error", () => {
    const h = harness();
    h.p.write(`${HEADER}<a></b>`);
    h.p.write("<message/>");
    assert.equal(h.errors.length, 1);
    assert.equal(h.elements.length, 0);
  });
});
