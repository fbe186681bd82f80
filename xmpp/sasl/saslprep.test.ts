import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SaslError } from "./errors.js";
import { escapeSaslName, saslprep } from "./saslprep.js";

describe("saslprep", () => {
  // RFC 4013 §3 examples (the bidi one is listed under "not covered" below).
  const examples: [string, string][] = [
    ["I\u00ADX", "IX"], // soft hyphen mapped to nothing
    ["user", "user"],
    ["USER", "USER"], // no case folding
    ["\u00AA", "a"], // NFKC
    ["\u2168", "IX"], // NFKC
  ];
  for (const [input, output] of examples) {
    it(`RFC 4013 example ${JSON.stringify(input)} -> ${JSON.stringify(output)}`, () => {
      assert.equal(saslprep(input, "password"), output);
    });
  }

  it("maps non-ASCII spaces to U+0020 and removes zero-width characters", () => {
    assert.equal(saslprep("a\u00A0b\u3000c", "password"), "a b c");
    assert.equal(saslprep("a\u200Bb\uFEFFc", "password"), "abc");
  });

  it("keeps printable ASCII, including spaces, untouched", () => {
    assert.equal(saslprep(" p@ss w0rd,=! ", "password"), " p@ss w0rd,=! ");
  });

  it("composes with NFKC", () => {
    assert.equal(saslprep("e\u0301", "password"), "\u00e9");
    assert.equal(saslprep("\uFB01", "password"), "fi");
  });

  const prohibited: [string, string][] = [
    ["ASCII control (RFC 4013 example)", "\u0007"],
    ["NUL", "a\u0000b"],
    ["DEL", "a\u007Fb"],
    ["C1 control", "a\u0085b"],
    ["line separator", "a\u2028b"],
    ["private use", "a\uE000b"],
    ["supplementary private use", "a\u{F0000}b"],
    ["non-character", "a\uFFFEb"],
    ["lone surrogate", "a\uD800b"],
    ["replacement character", "a\uFFFDb"],
    ["ideographic description", "a\u2FF0b"],
    ["left-to-right mark", "a\u200Eb"],
    ["tag character", "a\u{E0041}b"],
  ];
  for (const [name, input] of prohibited) {
    it(`refuses ${name} without echoing the value`, () => {
      assert.throws(
        () => saslprep(input, "password"),
        (err: unknown) =>
          err instanceof SaslError &&
          err.code === "sasl_bad_credentials" &&
          err.context.field === "password" &&
          !JSON.stringify(err.toJSON()).includes(input),
      );
    });
  }

  it("refuses empty strings, including ones that become empty", () => {
    assert.throws(() => saslprep("", "username"), /username is empty/);
    assert.throws(() => saslprep("\u00AD", "username"), /username is empty/);
  });

  it("refuses non-strings with a typed error", () => {
    assert.throws(() => saslprep(undefined as unknown as string, "password"), SaslError);
  });

  it("not covered: the bidi check (RFC 4013 example 7 is accepted here, a strict server may refuse it)", () => {
    assert.equal(saslprep("\u0627\u0031", "password"), "\u0627\u0031");
  });
});

describe("escapeSaslName", () => {
  it("escapes '=' before ',' so escapes are not escaped twice", () => {
    assert.equal(escapeSaslName("a=b,c"), "a=3Db=2Cc");
    assert.equal(escapeSaslName("=2C"), "=3D2C");
    assert.equal(escapeSaslName("plain"), "plain");
  });
});
