import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isAgentError } from "../kernel/errors.js";
import { bareJid, isDomainJid, JidError, parseJid, sameBare, tryParseJid } from "./jid.js";

function assertInvalid(input: string, reason: RegExp, part?: string): void {
  assert.throws(
    () => parseJid(input),
    (err: unknown) => {
      assert.ok(err instanceof JidError, "a JidError");
      assert.ok(isAgentError(err, "jid_invalid"));
      assert.match(String(err.context.reason), reason);
      if (part !== undefined) assert.equal(err.context.part, part);
      if (input.length < 3000) assert.equal(err.context.input, input);
      return true;
    },
  );
}

describe("parseJid", () => {
  it("splits a full JID", () => {
    assert.deepEqual(parseJid("dev1@example.org/agent"), {
      local: "dev1",
      domain: "example.org",
      resource: "agent",
      bare: "dev1@example.org",
      full: "dev1@example.org/agent",
    });
  });

  it("accepts a bare JID and a domain JID without optional keys", () => {
    const bare = parseJid("dev1@example.org");
    assert.equal(bare.resource, undefined);
    assert.equal("resource" in bare, false);
    assert.equal(bare.full, "dev1@example.org");
    const domain = parseJid("example.org");
    assert.deepEqual(domain, { domain: "example.org", bare: "example.org", full: "example.org" });
    assert.deepEqual(parseJid("example.org/res"), {
      domain: "example.org",
      resource: "res",
      bare: "example.org",
      full: "example.org/res",
    });
  });

  it("splits on the first slash, so the resource may contain '/' and '@'", () => {
    const j = parseJid("a@b.example/c/d@e");
    assert.equal(j.local, "a");
    assert.equal(j.domain, "b.example");
    assert.equal(j.resource, "c/d@e");
  });

  it("lowercases domain and localpart, keeps the resource's case", () => {
    const j = parseJid("Dev1@EXAMPLE.Org/Agent");
    assert.equal(j.full, "dev1@example.org/Agent");
  });

  it("strips one trailing dot from the domain", () => {
    assert.equal(parseJid("a@example.org./r").full, "a@example.org/r");
  });

  it("accepts IPv4 and bracketed IPv6 literals", () => {
    assert.equal(parseJid("a@127.0.0.1").domain, "127.0.0.1");
    assert.equal(parseJid("a@[::1]/r").domain, "[::1]");
    assert.equal(parseJid("[FE80::1]").domain, "[fe80::1]");
  });

  it("applies NFC to local and resource and maps non-ASCII spaces in the resource", () => {
    // "e" + combining acute -> precomposed é
    assert.equal(parseJid("cafe\u0301@example.org").local, "caf\u00e9");
    assert.equal(parseJid("a@example.org/x\u00a0y").resource, "x y");
  });

  it("accepts parts of exactly 1023 bytes", () => {
    const local = "a".repeat(1023);
    const resource = `${"\u00e9".repeat(511)}a`; // 1023 bytes in UTF-8
    const j = parseJid(`${local}@example.org/${resource}`);
    assert.equal(j.local, local);
    assert.equal(j.resource, resource);
  });

  it("refuses parts over 1023 bytes, counted in UTF-8 bytes", () => {
    assertInvalid(`${"a".repeat(1024)}@example.org`, /1024 bytes/, "local");
    assertInvalid(`a@example.org/${"\u00e9".repeat(512)}`, /1024 bytes/, "resource");
    const longDomain = Array.from({ length: 20 }, () => "a".repeat(60)).join(".");
    assertInvalid(`a@${longDomain}`, /bytes \(max 1023\)/, "domain");
  });

  it("refuses empty parts", () => {
    assertInvalid("", /empty domainpart/, "domain");
    assertInvalid("@example.org", /empty localpart/, "local");
    assertInvalid("a@example.org/", /empty resourcepart/, "resource");
    assertInvalid("a@/r", /empty domainpart/, "domain");
    assertInvalid(".", /empty domainpart/, "domain");
  });

  for (const ch of ['"', "&", "'", ":", "<", ">", " ", "\t", "\u3000"]) {
    it(`refuses ${JSON.stringify(ch)} in the localpart`, () => {
      assertInvalid(`a${ch}b@example.org`, /localpart contains/, "local");
    });
  }

  it("treats a second '@' as part of the domain, and refuses it there", () => {
    assertInvalid("a@b@example.org", /forbidden character "@"/, "domain");
  });

  it("refuses control characters anywhere", () => {
    assertInvalid("a\u0000b@example.org", /control/, "local");
    assertInvalid("a@exam\u0007ple.org", /control/, "domain");
    assertInvalid("a@example.org/r\n", /control/, "resource");
    assertInvalid("a@example.org/r\u2028", /control/, "resource");
  });

  it("refuses malformed domains", () => {
    assertInvalid("a@example..org", /empty label/, "domain");
    assertInvalid("a@example.org:5222", /forbidden character ":"/, "domain");
    assertInvalid("a@[::1", /IPv6/, "domain");
    assertInvalid("a@[not-an-ip]", /IPv6/, "domain");
    assertInvalid(`a@${"b".repeat(64)}.org`, /label longer than 63/, "domain");
    assertInvalid("a@exa mple.org", /forbidden character " "/, "domain");
  });

  it("truncates an absurdly long input in the error context", () => {
    const input = `${"x".repeat(10_000)}@example.org`;
    try {
      parseJid(input);
      assert.fail("should throw");
    } catch (err) {
      assert.ok(err instanceof JidError);
      assert.equal(err.context.inputLength, input.length);
      assert.ok(String(err.context.input).length < 3100);
    }
  });

  it("refuses non-strings with a typed error", () => {
    assert.throws(() => parseJid(42 as unknown as string), JidError);
  });
});

describe("helpers", () => {
  it("tryParseJid returns null on garbage", () => {
    assert.equal(tryParseJid("a@@b"), null);
    assert.equal(tryParseJid("a@b")?.bare, "a@b");
  });

  it("bareJid drops the resource and normalises", () => {
    assert.equal(bareJid("Dev@Example.ORG/x"), "dev@example.org");
    assert.equal(bareJid(parseJid("example.org/x")), "example.org");
  });

  it("sameBare compares normalised bare JIDs", () => {
    assert.equal(sameBare("dev@example.org/a", "DEV@example.org./b"), true);
    assert.equal(sameBare("dev@example.org", "dev@example.net"), false);
    assert.equal(sameBare("example.org", "x@example.org"), false);
    assert.throws(() => sameBare("dev@example.org", "bad@"), JidError);
  });

  it("isDomainJid is true only for a bare domain", () => {
    assert.equal(isDomainJid("example.org"), true);
    assert.equal(isDomainJid("pubsub.example.org"), true);
    assert.equal(isDomainJid("example.org/r"), false);
    assert.equal(isDomainJid("a@example.org"), false);
  });
});
