import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SaltedPasswordCache } from "./cache.js";
import { SaslError } from "./errors.js";
import { ScramMechanism } from "./scram.js";
import { DEFAULT_SASL_PREFERENCES, type SelectOptions, selectMechanism } from "./select.js";
import { ScramServer } from "./testing.js";
import type { ChannelBinding } from "./types.js";

const creds = { username: "dev", password: "secret" };
const exporter: ChannelBinding = { type: "tls-exporter", data: Buffer.alloc(32, 5) };
const ALL = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"];

function select(opts: Partial<SelectOptions>) {
  return selectMechanism(creds, {
    preferences: [...DEFAULT_SASL_PREFERENCES],
    offered: ALL,
    allowPlain: false,
    tlsActive: true,
    ...opts,
  });
}
const gs2 = (m: { initialResponse(): Buffer }) => m.initialResponse().toString().split(",n=")[0];

function throwsCode(fn: () => unknown, code: string): SaslError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SaslError, String(err));
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

describe("selectMechanism", () => {
  it("picks SCRAM-SHA-256-PLUS with tls-exporter when everything is offered", () => {
    const m = select({ channelBinding: exporter });
    assert.equal(m.name, "SCRAM-SHA-256-PLUS");
    assert.equal(gs2(m), "p=tls-exporter,");
  });

  it("follows our preference order, not the server's", () => {
    const m = select({ preferences: ["SCRAM-SHA-1", "SCRAM-SHA-256"], offered: ["SCRAM-SHA-256", "SCRAM-SHA-1"] });
    assert.equal(m.name, "SCRAM-SHA-1");
  });

  it("matches names case-insensitively", () => {
    assert.equal(select({ preferences: ["scram-sha-256"], offered: ["SCRAM-SHA-256"] }).name, "SCRAM-SHA-256");
  });

  it("skips -PLUS without channel-binding data; flag n because the server supports binding", () => {
    const m = select({});
    assert.equal(m.name, "SCRAM-SHA-256");
    assert.equal(gs2(m), "n,");
  });

  it("skips -PLUS when the server's XEP-0440 list excludes our type, and then sends n", () => {
    const m = select({ channelBinding: exporter, serverChannelBindings: ["tls-server-end-point"] });
    assert.equal(m.name, "SCRAM-SHA-256");
    assert.equal(gs2(m), "n,");
  });

  it("uses -PLUS when the server's XEP-0440 list includes our type", () => {
    const cb: ChannelBinding = { type: "tls-server-end-point", data: Buffer.alloc(32, 1) };
    const m = select({ channelBinding: cb, serverChannelBindings: ["tls-exporter", "tls-server-end-point"] });
    assert.equal(m.name, "SCRAM-SHA-256-PLUS");
    assert.equal(gs2(m), "p=tls-server-end-point,");
  });

  it("sends y when we could bind but the server offers no -PLUS at all", () => {
    const m = select({ channelBinding: exporter, offered: ["SCRAM-SHA-1", "SCRAM-SHA-256"] });
    assert.equal(m.name, "SCRAM-SHA-256");
    assert.equal(gs2(m), "y,");
  });

  it("sends n when the server offers -PLUS but our preferences put plain SCRAM first", () => {
    const m = select({ channelBinding: exporter, preferences: ["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"] });
    assert.equal(m.name, "SCRAM-SHA-256");
    assert.equal(gs2(m), "n,");
  });

  it("never binds without TLS, even if binding data was passed", () => {
    const m = select({ channelBinding: exporter, tlsActive: false, offered: ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"] });
    assert.equal(m.name, "SCRAM-SHA-256");
    assert.equal(gs2(m), "n,");
  });

  it("the y flag lets a server that supports -PLUS detect the stripped offer", () => {
    // An attacker removed -PLUS from the list; the real server does support it.
    const server = new ScramServer({ hash: "SHA-256", username: "dev", password: "secret", supportsPlus: true });
    const m = select({ channelBinding: exporter, offered: ["SCRAM-SHA-256"] });
    const serverFirst = server.first(m.initialResponse());
    const err = throwsCode(() => m.challenge(serverFirst), "sasl_server_error");
    assert.equal(err.context.serverError, "server-does-support-channel-binding");
  });

  it("PLAIN only when allowed and over TLS", () => {
    assert.equal(select({ offered: ["PLAIN"], allowPlain: true }).name, "PLAIN");
    const refused = throwsCode(() => select({ offered: ["PLAIN"] }), "sasl_plain_refused");
    assert.deepEqual(refused.context.rejected, [
      { mechanism: "PLAIN", reason: "not allowed by configuration (xmpp.allowPlain)" },
    ]);
    throwsCode(() => select({ offered: ["PLAIN"], allowPlain: true, tlsActive: false }), "sasl_plain_refused");
  });

  it("prefers SCRAM over an allowed PLAIN", () => {
    assert.equal(select({ offered: ["PLAIN", "SCRAM-SHA-1"], allowPlain: true }).name, "SCRAM-SHA-1");
  });

  it("throws sasl_no_mechanism listing offered vs allowed", () => {
    const err = throwsCode(
      () =>
        select({
          offered: ["DIGEST-MD5", "SCRAM-SHA-256-PLUS", "PLAIN"],
          preferences: ["SCRAM-SHA-256-PLUS", "PLAIN"],
        }),
      "sasl_no_mechanism",
    );
    assert.deepEqual(err.context.offered, ["DIGEST-MD5", "SCRAM-SHA-256-PLUS", "PLAIN"]);
    assert.deepEqual(err.context.preferences, ["SCRAM-SHA-256-PLUS", "PLAIN"]);
    assert.equal((err.context.rejected as unknown[]).length, 2);
    assert.match(err.message, /DIGEST-MD5/);
    throwsCode(() => select({ offered: [] }), "sasl_no_mechanism");
    throwsCode(() => select({ preferences: [] }), "sasl_no_mechanism");
  });

  it("names a preferred mechanism this client does not implement", () => {
    const err = throwsCode(() => select({ offered: ["DIGEST-MD5"], preferences: ["DIGEST-MD5"] }), "sasl_no_mechanism");
    assert.deepEqual(err.context.rejected, [{ mechanism: "DIGEST-MD5", reason: "not implemented by this client" }]);
  });

  it("picks EXTERNAL only with a client certificate over TLS, else falls through to the next preference", () => {
    const offered = ["EXTERNAL", "SCRAM-SHA-256"];
    const preferences = ["EXTERNAL", "SCRAM-SHA-256"];
    assert.equal(select({ offered, preferences, clientCertificate: true }).name, "EXTERNAL");
    assert.equal(select({ offered, preferences }).name, "SCRAM-SHA-256");
    assert.equal(select({ offered, preferences, clientCertificate: true, tlsActive: false }).name, "SCRAM-SHA-256");
    const ext = select({ offered, preferences, clientCertificate: true });
    assert.equal(ext.initialResponse().length, 0);
    ext.verifySuccess(null);
  });

  it("skips password mechanisms when there is no password (a certificate-only device)", () => {
    const err = throwsCode(
      () =>
        selectMechanism(
          { username: "dev", password: "" },
          {
            preferences: ["EXTERNAL", "SCRAM-SHA-256"],
            offered: ["SCRAM-SHA-256"],
            allowPlain: false,
            tlsActive: true,
          },
        ),
      "sasl_no_mechanism",
    );
    assert.deepEqual(err.context.rejected, [{ mechanism: "SCRAM-SHA-256", reason: "no password configured" }]);
  });

  it("passes the cache through to SCRAM", () => {
    const cache = new SaltedPasswordCache();
    const server = new ScramServer({ hash: "SHA-256", username: "dev", password: "secret" });
    const m = select({ cache, offered: ["SCRAM-SHA-256"] });
    assert.ok(m instanceof ScramMechanism);
    m.verifySuccess(server.final(m.challenge(server.first(m.initialResponse()))));
    assert.equal(cache.size, 1);
  });
});
