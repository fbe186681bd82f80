import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SaslError } from "./errors.js";
import { PlainMechanism } from "./plain.js";

const ok = { allowPlain: true, tlsActive: true };
const isCode = (code: string) => (err: unknown) => err instanceof SaslError && err.code === code;

describe("PLAIN", () => {
  it("builds authzid NUL authcid NUL passwd (RFC 4616)", () => {
    const m = new PlainMechanism({ username: "tim", password: "tanstaaftanstaaf" }, ok);
    assert.equal(m.name, "PLAIN");
    assert.deepEqual(m.initialResponse(), Buffer.from("\0tim\0tanstaaftanstaaf"));
    m.verifySuccess(null);
    m.verifySuccess(Buffer.alloc(0));
  });

  it("includes the authzid and applies SASLprep", () => {
    const m = new PlainMechanism({ username: "Kurt", password: "x\u00A0y\u00AD", authzid: "Ursel" }, ok);
    assert.deepEqual(m.initialResponse(), Buffer.from("Ursel\0Kurt\0x y"));
  });

  it("is refused unless allowed and over TLS", () => {
    const creds = { username: "u", password: "p" };
    assert.throws(
      () => new PlainMechanism(creds, { allowPlain: false, tlsActive: true }),
      isCode("sasl_plain_refused"),
    );
    assert.throws(() => new PlainMechanism(creds, { allowPlain: true, tlsActive: false }), /TLS is not active/);
  });

  it("a challenge, success data or a second initial response are errors", () => {
    const m = new PlainMechanism({ username: "u", password: "p" }, ok);
    assert.throws(() => m.verifySuccess(null), isCode("sasl_bad_state"));
    m.initialResponse();
    assert.throws(() => m.initialResponse(), isCode("sasl_bad_state"));
    assert.throws(() => m.challenge(Buffer.from("x")), isCode("sasl_bad_challenge"));
    assert.throws(() => m.verifySuccess(Buffer.from("x")), isCode("sasl_bad_challenge"));
  });

  it("refuses a password with NUL (it would shift the fields)", () => {
    assert.throws(() => new PlainMechanism({ username: "u", password: "a\0b" }, ok), isCode("sasl_bad_credentials"));
  });
});
