/**
 * Baseline child of the memory benchmark: plain node holding one TLS socket to the harness Prosody,
 * opened the way an XMPP client opens it (RFC 6120 STARTTLS: stream header, <starttls/>, <proceed/>,
 * TLS handshake verified against the harness CA, new stream header over TLS). No XML parser, no
 * SASL: just what node's TLS stack costs. Bundled by esbuild and run with the unit's flags.
 *
 * argv: HOST PORT DOMAIN CAFILE. Prints one JSON line when the TLS stream is up:
 * {"ready":true,"memory":process.memoryUsage()}, then holds the socket until killed.
 */
import { readFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";

const [host, port, domain, caFile] = process.argv.slice(2);
if (!host || !port || !domain || !caFile) {
  process.stderr.write("usage: tls-hold HOST PORT DOMAIN CAFILE\n");
  process.exit(2);
}
const header = `<?xml version='1.0'?><stream:stream to='${domain}' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`;
const fail = (why: string) => {
  process.stderr.write(`tls-hold: ${why}\n`);
  process.exit(1);
};

const tcp = tcpConnect({ host, port: Number(port) });
tcp.setEncoding("utf8");
let seen = "";
tcp.on("error", (e) => fail(e.message));
tcp.on("connect", () => tcp.write(header));
const onData = (chunk: string) => {
  seen += chunk;
  if (seen.includes("</stream:features>") && !seen.includes("<starttls")) fail("server offers no STARTTLS");
  if (seen.includes("</stream:features>") && !seen.includes("<proceed")) {
    if (!seen.includes("sent-starttls")) {
      seen += "sent-starttls";
      tcp.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    }
  }
  if (seen.includes("<proceed")) {
    tcp.off("data", onData);
    const tls = tlsConnect({ socket: tcp, servername: domain, ca: readFileSync(caFile) }, () => {
      tls.setEncoding("utf8");
      tls.write(header);
      let after = "";
      tls.on("data", (d: string) => {
        after += d;
        if (after.includes("</stream:features>") && !after.includes("ready-sent")) {
          after += "ready-sent";
          process.stdout.write(`${JSON.stringify({ ready: true, memory: process.memoryUsage() })}\n`);
        }
      });
    });
    tls.on("error", (e) => fail(e.message));
  }
};
tcp.on("data", onData);
setInterval(() => undefined, 60_000);
