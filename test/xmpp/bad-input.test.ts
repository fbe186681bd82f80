/**
 * Malformed XML inside the TLS stream: no real server emits it, so a scripted Direct-TLS server
 * (test/xmpp/scripted-server.ts) sends it after a normal negotiation. The session must drop the
 * connection, never hand a half-parsed stanza up, and come back on a new connection. (Well-formed
 * stanzas over a limit are skipped without a drop: test/xmpp/session.test.ts, against Prosody.)
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Element } from "ltx";
import { type Certificate, createCertificate } from "../harness/certs.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";
import { type ScriptedConnection, type ScriptedServer, startScriptedServer } from "./scripted-server.js";
import { newSession, testXmppConfig, waitFor, waitOnline } from "./helpers.js";

describe("bad input inside the stream (scripted Direct-TLS server)", () => {
  let dir: TempDir;
  let cert: Certificate;
  before(async () => {
    dir = makeTempDir();
    cert = await createCertificate({ dir: dir.path });
  });
  after(() => dir.remove());

  for (const [name, payload, code] of [
    ["a mismatched end tag", "<message from='x@iot.test'><body>hi</bogus></message>", "xml_malformed"],
    ["an undefined entity", "<message from='x@iot.test'><body>&nope;</body></message>", "xml_malformed"],
    ["text between stanzas", "hello<message/>", "xml_malformed"],
  ] as const) {
    it(`drops the connection on ${name} and comes back`, async () => {
      let server: ScriptedServer | undefined;
      const ready: ScriptedConnection[] = [];
      server = await startScriptedServer(cert, (c) => {
        ready.push(c);
        if (c.index === 0) setTimeout(() => c.socket.write(payload), 50);
      });
      const s = newSession(
        testXmppConfig(
          { host: "127.0.0.1", port: server.port, domain: "iot.test", caFile: cert.caFile },
          "device@iot.test",
          "pw",
          {
            directTls: true,
            allowPlain: true,
            saslMechanisms: "PLAIN",
          },
        ),
        "pw",
        { presence: false },
      );
      const offline: string[] = [];
      const stanzas: Element[] = [];
      s.on("offline", (o) => offline.push(o.error?.code ?? o.reason));
      s.on("stanza", (el) => stanzas.push(el));
      s.start();
      try {
        await waitOnline(s);
        const back = waitOnline(s);
        await back;
        await waitFor(() => ready.length >= 2, 5000, "a second connection");
        assert.equal(offline[0], code);
        assert.equal(stanzas.length, 0, "nothing half-parsed reached the layers above");
        assert.equal(s.state, "online");
      } finally {
        await s.stop();
        await server.close();
      }
    });
  }
});
