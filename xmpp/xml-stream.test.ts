import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Element } from "ltx";
import { SkippedElement, type XmlStreamError, type XmlStreamLimits, XmlStreamParser } from "./xml-stream.js";

const HEADER =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' version='1.0' from='iot.test'>";

function harness(limits: XmlStreamLimits = { maxStanzaBytes: 4096, maxDepth: 8 }) {
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

  it("skips an oversized stanza whole and goes on with the next", () => {
    const h = harness({ maxStanzaBytes: 2048, maxDepth: 8 });
    h.p.write(HEADER);
    h.p.write("<iq type='get' id='big1' from='eve@iot.test/x' to='dev@iot.test/a'><query xmlns='q'><x>");
    for (let i = 0; i < 10; i++) h.p.write("x".repeat(500));
    h.p.write("<y a='1'/></x></query></iq><message id='m2'><body>after</body></message>");
    assert.equal(h.errors.length, 0);
    assert.equal(h.elements.length, 2);
    const stub = h.elements[0]!;
    assert.ok(stub instanceof SkippedElement);
    assert.equal(stub.reason.code, "stanza_too_large");
    assert.equal(stub.name, "iq");
    assert.deepEqual(stub.attrs, { id: "big1", type: "get", from: "eve@iot.test/x", to: "dev@iot.test/a" });
    assert.equal(stub.children.length, 0);
    assert.equal(h.elements[1]!.getChildText("body"), "after");
  });

  it("skips byte by byte as well as in one piece", () => {
    const h = harness({ maxStanzaBytes: 1024, maxDepth: 4 });
    const input = Buffer.from(
      `${HEADER}<message id='d'>${"<a x='ü'>".repeat(10)}${"</a>".repeat(10)}</message><message id='ok'/>`,
    );
    for (let i = 0; i < input.length; i++) h.p.write(input.subarray(i, i + 1));
    assert.equal(h.errors.length, 0);
    assert.deepEqual(
      h.elements.map((e) => [e.attrs.id, e instanceof SkippedElement ? e.reason.code : "built"]),
      [
        ["d", "stanza_too_deep"],
        ["ok", "built"],
      ],
    );
  });

  it("counts text as decoded: a re-escaped body is not three times its size", () => {
    // 2,000 apostrophes arrive as 12,000 bytes of &apos; but hold 2,000 characters.
    const h = harness({ maxStanzaBytes: 4096, maxDepth: 8 });
    h.p.write(`${HEADER}<message><body>${"&apos;".repeat(2000)}</body></message>`);
    assert.equal(h.errors.length, 0);
    assert.equal(h.elements[0]!.getChildText("body")?.length, 2000);
  });

  it("resets the size budget per stanza", () => {
    const h = harness({ maxStanzaBytes: 2048, maxDepth: 8 });
    h.p.write(HEADER);
    for (let i = 0; i < 20; i++) h.p.write(`<message><body>${"y".repeat(900)}</body></message>`);
    assert.equal(h.errors.length, 0);
    assert.equal(h.elements.length, 20);
  });

  it("skips deep nesting and elements with too many attributes", () => {
    const h = harness({ maxStanzaBytes: 4096, maxDepth: 4, maxAttributes: 3 });
    h.p.write(`${HEADER}<iq id='1'><b><c><d><e/></d></c></b></iq>`);
    h.p.write(
      "<presence id='2'><x a='1' b='2' c='3' d='4'/></presence><message id='3'><x a='1' b='2' c='3'/></message>",
    );
    assert.equal(h.errors.length, 0);
    assert.deepEqual(
      h.elements.map((e) => (e instanceof SkippedElement ? e.reason.code : "built")),
      ["stanza_too_deep", "stanza_too_many_attributes", "built"],
    );
  });

  it("keeps a skipped stanza's routing attributes short", () => {
    const h = harness({ maxStanzaBytes: 2048, maxDepth: 8, ceilingBytes: 1 << 20 });
    h.p.write(`${HEADER}<iq type='set' id='${"i".repeat(100_000)}'/>`);
    const stub = h.elements[0] as SkippedElement;
    assert.equal(stub.reason.code, "stanza_too_large");
    assert.ok(String(stub.attrs.id).length <= 3072);
  });

  it("drops the stream for an element past the ceiling, even one that never ends", () => {
    const h = harness({ maxStanzaBytes: 2048, maxDepth: 8, ceilingBytes: 8192 });
    h.p.write(HEADER);
    h.p.write("<message><body>");
    for (let i = 0; i < 40; i++) h.p.write("x".repeat(500));
    assert.equal(h.errors.length, 1);
    assert.equal(h.errors[0]?.code, "stanza_over_ceiling");
    assert.equal(h.errors[0]?.context.element, "message");
    assert.equal(h.elements.length, 0);
  });

  it("reads one socket chunk of many small stanzas larger than the ceiling, and still drops a big one in it", () => {
    // A TLS record carries up to 16 KiB and a plain TCP read up to 64 KiB, many stanzas at a time: the
    // ceiling is about one element, not about how much one read brought.
    const h = harness({ maxStanzaBytes: 1024, maxDepth: 8, ceilingBytes: 4096 });
    h.p.write(HEADER);
    const small = "<message to='dev@iot.test'><body>a reading, acknowledged</body></message>";
    h.p.write(Buffer.from(small.repeat(200)));
    assert.equal(h.errors.length, 0);
    assert.equal(h.elements.length, 200);
    h.p.write(Buffer.from(`${small}<message><body>${"x".repeat(30_000)}</body></message>${small}`));
    assert.equal(h.errors[0]?.code, "stanza_over_ceiling");
    assert.equal(h.elements.length, 201);
  });

  it("lets whitespace keepalives between stanzas go on for ever", () => {
    const h = harness({ maxStanzaBytes: 2048, maxDepth: 8, ceilingBytes: 4096 });
    h.p.write(HEADER);
    for (let i = 0; i < 10_000; i++) h.p.write(i % 100 === 0 ? " <r xmlns='urn:xmpp:sm:3'/>" : " ");
    assert.equal(h.errors.length, 0);
    assert.equal(h.elements.length, 100);
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
