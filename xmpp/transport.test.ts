import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { FakeLink } from "./testing/index.js";
import { channelBinding, parseHostPort, resolveEndpoints, type TlsChannel } from "./transport.js";

function channel(protocol: "TLSv1.2" | "TLSv1.3"): TlsChannel {
  const link = new FakeLink({ onWrite: () => undefined, onEnd: () => undefined }, true);
  return Object.assign(link, { getProtocol: () => protocol });
}

describe("transport", () => {
  it("parses host:port and [v6]:port, and nothing else", () => {
    assert.deepEqual(parseHostPort("xmpp.example.org:5222"), { host: "xmpp.example.org", port: 5222 });
    assert.deepEqual(parseHostPort("[2001:db8::1]:5223"), { host: "2001:db8::1", port: 5223 });
    for (const bad of ["host", "host:0", "host:70000", "a:b:1", "[2001:db8::1]", ":5222"])
      assert.throws(
        () => parseHostPort(bad),
        (e: Error & { code?: string }) => e.code === "bad_endpoint",
        bad,
      );
  });

  it("uses the configured endpoints without asking DNS, by priority", async () => {
    assert.deepEqual(
      await resolveEndpoints("iot.test", false, [
        { host: "127.0.0.2", port: 15222, priority: 10, weight: 1 },
        { host: "127.0.0.1", port: 15222, priority: 0, weight: 1 },
      ]),
      [
        { host: "127.0.0.1", port: 15222 },
        { host: "127.0.0.2", port: 15222 },
      ],
    );
  });

  it("binds to the channel type the server can check", () => {
    const v13 = channel("TLSv1.3");
    const v12 = channel("TLSv1.2");
    // No XEP-0440 list: tls-unique, what servers before it check.
    assert.equal(channelBinding(v13, undefined)?.type, "tls-unique");
    const exporter = channelBinding(v13, ["tls-exporter", "tls-server-end-point"]);
    assert.equal(exporter?.type, "tls-exporter");
    assert.equal(exporter?.data.length, 32);
    // tls-exporter is only defined for TLS 1.3 (RFC 9266).
    assert.equal(channelBinding(v12, ["tls-exporter", "tls-server-end-point"])?.type, "tls-server-end-point");
    assert.deepEqual(
      channelBinding(v12, ["tls-server-end-point"])?.data,
      createHash("sha256").update(v12.getPeerCertificate().raw!).digest(),
    );
    assert.equal(channelBinding(v12, ["tls-unique"])?.type, "tls-unique");
    // tls-unique is unsafe (and undefined) on TLS 1.3 when the server names its types.
    assert.equal(channelBinding(v13, ["tls-unique"]), undefined);
  });
});
