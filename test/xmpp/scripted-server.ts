/**
 * A scripted XMPP server for the few cases a real server will not produce: it speaks Direct TLS
 * (XEP-0368) with the harness certificate, accepts SASL PLAIN, binds, enables stream management,
 * then hands the connection to the test (e.g. to send malformed XML inside the TLS stream, which
 * Prosody never emits). Everything else is tested against real Prosody and ejabberd.
 */
import { readFileSync } from "node:fs";
import tls from "node:tls";
import type { Element } from "ltx";
import { NS_STREAM, XmlStreamParser } from "../../agent/xmpp/xml-stream.js";
import type { Certificate } from "../harness/certs.js";

export interface ScriptedConnection {
  index: number;
  socket: tls.TLSSocket;
  /** Elements the client sent after negotiation. */
  received: Element[];
}

export interface ScriptedServer {
  port: number;
  connections: ScriptedConnection[];
  close(): Promise<void>;
}

const FEATURES_SASL = `<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`;
const FEATURES_BOUND = `<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/></stream:features>`;

function header(id: string): string {
  return `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' id='${id}' from='iot.test' version='1.0'>`;
}

export function startScriptedServer(
  cert: Certificate,
  onReady: (c: ScriptedConnection) => void,
): Promise<ScriptedServer> {
  const connections: ScriptedConnection[] = [];
  const server = tls.createServer({ cert: cert.certPem, key: readFileSync(cert.keyFile, "utf8") }, (socket) => {
    const conn: ScriptedConnection = { index: connections.length, socket, received: [] };
    connections.push(conn);
    let phase: "sasl" | "bound" | "ready" = "sasl";
    let parser: XmlStreamParser;
    const fresh = () => {
      parser = new XmlStreamParser({ maxStanzaBytes: 1 << 20, maxDepth: 32 });
      parser.on("streamStart", () => {
        socket.write(header(`s${conn.index}-${phase}`) + (phase === "sasl" ? FEATURES_SASL : FEATURES_BOUND));
      });
      parser.on("element", (el) => {
        if (phase === "sasl" && el.name === "auth") {
          socket.write("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
          phase = "bound";
          fresh();
          return;
        }
        if (el.name === "resume") {
          socket.write(
            "<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>",
          );
          return;
        }
        if (el.name === "iq" && el.getChild("bind")) {
          socket.write(
            `<iq type='result' id='${el.attrs.id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>device@iot.test/agent</jid></bind></iq>`,
          );
          return;
        }
        if (el.name === "enable") {
          socket.write(`<enabled xmlns='urn:xmpp:sm:3' id='sm-${conn.index}' resume='true' max='60'/>`);
          phase = "ready";
          onReady(conn);
          return;
        }
        if (el.name === "r") {
          socket.write(`<a xmlns='urn:xmpp:sm:3' h='0'/>`);
          return;
        }
        conn.received.push(el);
      });
    };
    fresh();
    socket.on("data", (d: Buffer) => parser.write(d));
    socket.on("error", () => undefined);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const addr = server.address() as { port: number };
      resolve({
        port: addr.port,
        connections,
        close: () =>
          new Promise<void>((r) => {
            for (const c of connections) c.socket.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
