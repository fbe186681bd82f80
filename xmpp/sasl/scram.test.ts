import assert from "node:assert/strict";
import { pbkdf2Sync } from "node:crypto";
import { describe, it } from "node:test";
import { createLogger } from "../../kernel/log.js";
import { SaltedPasswordCache } from "./cache.js";
import { SaslError, type SaslErrorCode } from "./errors.js";
import { MAX_SCRAM_ITERATIONS, type Pbkdf2Fn, ScramMechanism, type ScramOptions } from "./scram.js";
import { ScramServer } from "./testing.js";
import type { ChannelBinding, SaslCredentials } from "./types.js";

const b = (s: string) => Buffer.from(s, "utf8");
const creds: SaslCredentials = { username: "user", password: "pencil" };

// RFC 5802 §5
const SHA1 = {
  nonce: "fyko+d2lbbFgONRv9qkxdawL",
  serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
  clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
  serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};
// RFC 7677 §3
const SHA256 = {
  nonce: "rOprNGfwEbeRWgbNEkqO",
  serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal:
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

function countingPbkdf2(): { fn: Pbkdf2Fn; calls: () => number } {
  let calls = 0;
  return {
    fn: (password, salt, iterations, keylen, digest) => {
      calls++;
      return pbkdf2Sync(password, salt, iterations, keylen, digest);
    },
    calls: () => calls,
  };
}

function sha1(options: Partial<ScramOptions> = {}, c = creds): ScramMechanism {
  return new ScramMechanism(c, { hash: "SHA-1", clientNonce: SHA1.nonce, ...options });
}

function throwsCode(fn: () => unknown, code: SaslErrorCode, reason?: RegExp): SaslError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SaslError, `expected SaslError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (reason) assert.match(String(caught.context.reason), reason);
  return caught;
}

describe("SCRAM RFC test vectors", () => {
  it("SCRAM-SHA-1 (RFC 5802 §5)", () => {
    const m = sha1();
    assert.equal(m.name, "SCRAM-SHA-1");
    assert.equal(m.initialResponse().toString(), `n,,n=user,r=${SHA1.nonce}`);
    assert.equal(m.challenge(b(SHA1.serverFirst)).toString(), SHA1.clientFinal);
    assert.equal(m.iterations, 4096);
    m.verifySuccess(b(SHA1.serverFinal));
  });

  it("SCRAM-SHA-256 (RFC 7677 §3)", () => {
    const m = new ScramMechanism(creds, { hash: "SHA-256", clientNonce: SHA256.nonce });
    assert.equal(m.name, "SCRAM-SHA-256");
    assert.equal(m.initialResponse().toString(), `n,,n=user,r=${SHA256.nonce}`);
    assert.equal(m.challenge(b(SHA256.serverFirst)).toString(), SHA256.clientFinal);
    m.verifySuccess(b(SHA256.serverFinal));
  });

  it("accepts the server-final delivered as a last challenge, then an empty <success/>", () => {
    const m = sha1();
    m.initialResponse();
    m.challenge(b(SHA1.serverFirst));
    assert.equal(m.challenge(b(SHA1.serverFinal)).length, 0);
    m.verifySuccess(null);
    m.verifySuccess(Buffer.alloc(0));
  });

  it("a random client nonce is 24 printable characters and differs per instance", () => {
    const a = new ScramMechanism(creds, { hash: "SHA-256" }).initialResponse().toString();
    const c = new ScramMechanism(creds, { hash: "SHA-256" }).initialResponse().toString();
    assert.match(a, /^n,,n=user,r=[\x21-\x2B\x2D-\x7E]{24}$/);
    assert.notEqual(a, c);
  });
});

describe("SCRAM server verification", () => {
  function afterChallenge(): ScramMechanism {
    const m = sha1();
    m.initialResponse();
    m.challenge(b(SHA1.serverFirst));
    return m;
  }

  it("a wrong server signature throws sasl_server_signature", () => {
    const err = throwsCode(
      () => afterChallenge().verifySuccess(b("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=")),
      "sasl_server_signature",
    );
    assert.equal(err.context.reason, "mismatch");
  });

  it("a signature of the wrong length throws sasl_server_signature", () => {
    throwsCode(() => afterChallenge().verifySuccess(b("v=AAAA")), "sasl_server_signature");
  });

  it("success without server-final throws (the server's identity would be unverified)", () => {
    const err = throwsCode(() => afterChallenge().verifySuccess(null), "sasl_server_signature");
    assert.equal(err.context.reason, "missing");
    throwsCode(() => afterChallenge().verifySuccess(Buffer.alloc(0)), "sasl_server_signature");
  });

  it("e= in server-final surfaces the server's reason", () => {
    const err = throwsCode(() => afterChallenge().verifySuccess(b("e=invalid-proof")), "sasl_server_error");
    assert.equal(err.context.serverError, "invalid-proof");
    assert.match(err.message, /invalid-proof/);
  });

  it("e= in place of server-first also surfaces as sasl_server_error", () => {
    const m = sha1();
    m.initialResponse();
    const err = throwsCode(() => m.challenge(b("e=unknown-user")), "sasl_server_error");
    assert.equal(err.context.serverError, "unknown-user");
  });

  it("malformed server-final throws sasl_bad_challenge", () => {
    throwsCode(() => afterChallenge().verifySuccess(b("x=1")), "sasl_bad_challenge");
    throwsCode(() => afterChallenge().verifySuccess(b("v=not base64!")), "sasl_bad_challenge");
    throwsCode(() => afterChallenge().verifySuccess(b("garbage")), "sasl_bad_challenge");
  });

  it("after a failed verification every further call is sasl_bad_state", () => {
    const m = afterChallenge();
    throwsCode(() => m.verifySuccess(b("v=AAAA")), "sasl_server_signature");
    throwsCode(() => m.verifySuccess(b(SHA1.serverFinal)), "sasl_bad_state");
  });
});

describe("SCRAM server-first validation", () => {
  const nonce = `${SHA1.nonce}srv`;
  const cases: [string, string | Buffer, RegExp][] = [
    ["missing r", "s=QSXCR+Q6sek8bf92,i=4096", /r=, s=, i=/],
    ["missing s", `r=${nonce},i=4096`, /r=, s=, i=/],
    ["missing i", `r=${nonce},s=QSXCR+Q6sek8bf92`, /r=, s=, i=/],
    ["wrong order", `s=QSXCR+Q6sek8bf92,r=${nonce},i=4096`, /r=, s=, i=/],
    ["foreign nonce", "r=someoneelse123,s=QSXCR+Q6sek8bf92,i=4096", /does not extend/],
    ["nonce not extended", `r=${SHA1.nonce},s=QSXCR+Q6sek8bf92,i=4096`, /does not extend/],
    ["non-printable nonce", `r=${SHA1.nonce}\u00e9,s=QSXCR+Q6sek8bf92,i=4096`, /printable/],
    ["huge i", `r=${nonce},s=QSXCR+Q6sek8bf92,i=${MAX_SCRAM_ITERATIONS + 1}`, /exceeds the limit/],
    ["absurd i", `r=${nonce},s=QSXCR+Q6sek8bf92,i=99999999999999999999999`, /exceeds the limit/],
    ["i=0", `r=${nonce},s=QSXCR+Q6sek8bf92,i=0`, /positive integer/],
    ["negative i", `r=${nonce},s=QSXCR+Q6sek8bf92,i=-1`, /positive integer/],
    ["non-numeric i", `r=${nonce},s=QSXCR+Q6sek8bf92,i=4k`, /positive integer/],
    ["leading-zero i", `r=${nonce},s=QSXCR+Q6sek8bf92,i=04096`, /positive integer/],
    ["salt not base64", `r=${nonce},s=not*base64,i=4096`, /base64/],
    ["salt bad padding", `r=${nonce},s=QSXCR+Q6sek8bf9,i=4096`, /base64/],
    ["empty salt", `r=${nonce},s=,i=4096`, /base64/],
    ["mandatory extension", `m=ext,r=${nonce},s=QSXCR+Q6sek8bf92,i=4096`, /mandatory extension/],
    ["not key=value", "hello world", /x=value/],
    ["empty message", "", /x=value/],
    ["invalid UTF-8", Buffer.from([0x72, 0x3d, 0xff, 0xfe]), /UTF-8/],
  ];
  for (const [name, msg, reason] of cases) {
    it(`refuses ${name}`, () => {
      const pbkdf2 = countingPbkdf2();
      const m = sha1({ pbkdf2: pbkdf2.fn });
      m.initialResponse();
      throwsCode(() => m.challenge(typeof msg === "string" ? b(msg) : msg), "sasl_bad_challenge", reason);
      assert.equal(pbkdf2.calls(), 0, "no PBKDF2 for a refused message");
      throwsCode(() => m.challenge(b(SHA1.serverFirst)), "sasl_bad_state");
    });
  }

  it("accepts extensions after i=", () => {
    const m = sha1();
    m.initialResponse();
    const text = `${SHA1.serverFirst},x=future`;
    const final = m.challenge(b(text)).toString();
    assert.match(final, /^c=biws,r=fyko/);
  });

  it("accepts the limit itself and passes the iteration count to PBKDF2", () => {
    const seen: number[] = [];
    const m = sha1({
      pbkdf2: (_p, _s, iterations, keylen) => {
        seen.push(iterations);
        return Buffer.alloc(keylen, 1);
      },
    });
    m.initialResponse();
    m.challenge(b(`r=${nonce},s=QSXCR+Q6sek8bf92,i=${MAX_SCRAM_ITERATIONS}`));
    assert.deepEqual(seen, [MAX_SCRAM_ITERATIONS]);
  });

  it("accepts a low iteration count but warns", () => {
    const lines: string[] = [];
    const logger = createLogger({ level: "warn", write: (l) => lines.push(l) });
    const m = sha1({ logger });
    m.initialResponse();
    m.challenge(b(`r=${nonce},s=QSXCR+Q6sek8bf92,i=1`));
    assert.equal(lines.length, 1);
    const rec = JSON.parse(lines[0]!);
    assert.equal(rec.level, "warn");
    assert.equal(rec.iterations, 1);
    assert.ok(!lines[0]!.includes("pencil"));
  });
});

describe("SCRAM SaltedPassword cache", () => {
  it("a second login with the same salt and iterations skips PBKDF2 and still matches the vector", () => {
    const cache = new SaltedPasswordCache();
    const pbkdf2 = countingPbkdf2();
    for (let round = 0; round < 3; round++) {
      const m = sha1({ cache, pbkdf2: pbkdf2.fn });
      m.initialResponse();
      assert.equal(m.challenge(b(SHA1.serverFirst)).toString(), SHA1.clientFinal);
      m.verifySuccess(b(SHA1.serverFinal));
    }
    assert.equal(pbkdf2.calls(), 1);
    assert.equal(cache.size, 1);
  });

  it("a different salt, iteration count, hash or password derives again", () => {
    const cache = new SaltedPasswordCache({ maxEntries: 8 });
    const pbkdf2 = countingPbkdf2();
    const run = (serverFirst: string, c = creds, hash: "SHA-1" | "SHA-256" = "SHA-1") => {
      const m = new ScramMechanism(c, { hash, clientNonce: SHA1.nonce, cache, pbkdf2: pbkdf2.fn });
      m.initialResponse();
      m.challenge(b(serverFirst));
    };
    run(SHA1.serverFirst);
    run(SHA1.serverFirst.replace("s=QSXCR+Q6sek8bf92", "s=QSXCR+Q6sek8bf93"));
    run(SHA1.serverFirst.replace("i=4096", "i=4097"));
    run(SHA1.serverFirst, { username: "user", password: "pencil2" });
    run(SHA1.serverFirst, creds, "SHA-256");
    assert.equal(pbkdf2.calls(), 5);
    run(SHA1.serverFirst);
    assert.equal(pbkdf2.calls(), 5);
  });
});

describe("SCRAM channel binding", () => {
  const binding: ChannelBinding = { type: "tls-exporter", data: Buffer.from("0123456789abcdef0123456789abcdef") };

  it("-PLUS sends the p= gs2 header and binds c= to the channel data", () => {
    const m = new ScramMechanism(creds, {
      hash: "SHA-256",
      clientNonce: SHA256.nonce,
      channelBinding: { flag: "p", binding },
    });
    assert.equal(m.name, "SCRAM-SHA-256-PLUS");
    assert.equal(m.initialResponse().toString(), `p=tls-exporter,,n=user,r=${SHA256.nonce}`);
    const final = m.challenge(b(SHA256.serverFirst)).toString();
    const c = /^c=([^,]+),/.exec(final)![1]!;
    assert.deepEqual(Buffer.from(c, "base64"), Buffer.concat([b("p=tls-exporter,,"), binding.data]));
  });

  it("a full -PLUS exchange passes an independent SCRAM server, for both hashes and binding types", () => {
    for (const hash of ["SHA-1", "SHA-256"] as const) {
      for (const type of ["tls-exporter", "tls-server-end-point"] as const) {
        const cb: ChannelBinding = { type, data: binding.data };
        const server = new ScramServer({ hash, username: "user", password: "pencil", channelBinding: cb });
        const m = new ScramMechanism(creds, { hash, channelBinding: { flag: "p", binding: cb } });
        const final = m.challenge(server.first(m.initialResponse()));
        m.verifySuccess(server.final(final));
      }
    }
  });

  it("different binding data on the server side (a relaying impostor) fails the exchange", () => {
    const server = new ScramServer({
      hash: "SHA-256",
      username: "user",
      password: "pencil",
      channelBinding: { type: "tls-exporter", data: Buffer.alloc(32, 7) },
    });
    const m = new ScramMechanism(creds, { hash: "SHA-256", channelBinding: { flag: "p", binding } });
    const final = m.challenge(server.first(m.initialResponse()));
    const err = throwsCode(() => m.verifySuccess(server.final(final)), "sasl_server_error");
    assert.equal(err.context.serverError, "channel-bindings-dont-match");
  });

  it("the y flag is sent in the header and in c=", () => {
    const m = sha1({ channelBinding: { flag: "y" } });
    assert.equal(m.name, "SCRAM-SHA-1");
    assert.equal(m.initialResponse().toString(), `y,,n=user,r=${SHA1.nonce}`);
    assert.match(m.challenge(b(SHA1.serverFirst)).toString(), /^c=eSws,/); // base64("y,,")
  });

  it("-PLUS without usable binding data is refused at construction", () => {
    const bad = (cb: ChannelBinding) => () =>
      new ScramMechanism(creds, { hash: "SHA-1", channelBinding: { flag: "p", binding: cb } });
    throwsCode(bad({ type: "tls-exporter", data: Buffer.alloc(0) }), "sasl_channel_binding");
    throwsCode(bad({ type: "tls-bogus" as "tls-exporter", data: Buffer.alloc(4) }), "sasl_channel_binding");
  });
});

describe("SCRAM credentials and state", () => {
  it("escapes ',' and '=' in the username and the authzid", () => {
    const m = sha1({}, { username: "a,b=c", password: "pencil", authzid: "x=y,z" });
    assert.equal(m.initialResponse().toString(), `n,a=x=3Dy=2Cz,n=a=2Cb=3Dc,r=${SHA1.nonce}`);
  });

  it("a full exchange with an escaped username and a non-ASCII password passes the independent server", () => {
    const server = new ScramServer({ hash: "SHA-256", username: "dev,1", password: "p\u00e4ss wörd" });
    const m = new ScramMechanism(
      { username: "dev,1", password: "pa\u0308ss\u00a0wo\u0308rd" },
      { hash: "SHA-256" }, // NFKC composes the umlauts, the NBSP becomes a space
    );
    m.verifySuccess(server.final(m.challenge(server.first(m.initialResponse()))));
  });

  it("a wrong password is reported by the server as invalid-proof", () => {
    const server = new ScramServer({ hash: "SHA-1", username: "user", password: "other" });
    const m = new ScramMechanism(creds, { hash: "SHA-1" });
    throwsCode(
      () => m.verifySuccess(server.final(m.challenge(server.first(m.initialResponse())))),
      "sasl_server_error",
    );
  });

  it("unusable credentials fail at construction without echoing them", () => {
    const err = throwsCode(
      () => new ScramMechanism({ username: "user", password: "sec\u0007ret" }, { hash: "SHA-1" }),
      "sasl_bad_credentials",
    );
    assert.equal(err.context.field, "password");
    assert.ok(!JSON.stringify(err.toJSON()).includes("sec"));
    throwsCode(() => new ScramMechanism({ username: "", password: "x" }, { hash: "SHA-1" }), "sasl_bad_credentials");
    throwsCode(() => new ScramMechanism({ username: "u", password: "" }, { hash: "SHA-1" }), "sasl_bad_credentials");
  });

  it("calls out of order are sasl_bad_state", () => {
    throwsCode(() => sha1().challenge(b(SHA1.serverFirst)), "sasl_bad_state");
    throwsCode(() => sha1().verifySuccess(b(SHA1.serverFinal)), "sasl_bad_state");
    const m = sha1();
    m.initialResponse();
    throwsCode(() => m.initialResponse(), "sasl_bad_state");
    throwsCode(() => m.verifySuccess(b(SHA1.serverFinal)), "sasl_bad_state");
  });

  it("refuses an injected client nonce with a comma", () => {
    throwsCode(() => sha1({ clientNonce: "a,b" }), "sasl_bad_state");
  });
});
