/**
 * A scripted XMPP server for the few cases a real server will not produce: it speaks Direct TLS
 * (XEP-0368) with the harness certificate, accepts SASL PLAIN, binds, enables stream management,
 * then hands the connection to the test (e.g. to send malformed XML inside the TLS stream, which
 * Prosody never emits). Everything else is tested against real Prosody and ejabberd.
 *
 * The server's side of the protocol is the in-process test kit's (xmpp/testing/FakeServer),
 * here over a real TLS socket: one server script for both kinds of test.
 */
import { readFileSync } from "node:fs";
import tls from "node:tls";
import type { Element } from "ltx";
import { FakeServer } from "../../xmpp/testing/index.js";
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

/** The account the scripted server accepts. */
export const SCRIPTED_ACCOUNT = { username: "device", password: "pw", domain: "iot.test" };

/** Over a real socket "nothing more is coming" is a wait: until input arrives, or 5 s. */
function realIdle(arrived: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  return new Promise((resolve) => {
    const poll = () => (arrived() || Date.now() > deadline ? resolve() : setTimeout(poll, 5));
    poll();
  });
}

export function startScriptedServer(
  cert: Certificate,
  onReady: (c: ScriptedConnection) => void,
): Promise<ScriptedServer> {
  const connections: ScriptedConnection[] = [];
  const server = tls.createServer({ cert: cert.certPem, key: readFileSync(cert.keyFile, "utf8") }, (socket) => {
    const conn: ScriptedConnection = { index: connections.length, socket, received: [] };
    connections.push(conn);
    const peer = new FakeServer(
      {
        write: (text) => socket.write(text),
        hangUp: () => socket.end(),
        reset: () => socket.destroy(),
        closed: () => socket.destroyed,
      },
      { index: conn.index, ...SCRIPTED_ACCOUNT, idle: realIdle },
    );
    socket.on("data", (d: Buffer) => peer.feed(d.toString("utf8")));
    socket.on("end", () => peer.ended());
    socket.on("error", () => undefined);
    peer
      .login({ mechanisms: ["PLAIN"], enabled: { max: 60 } })
      .then((outcome) => {
        if (!outcome.enable) return;
        peer.setHandler((el) => {
          if (el.name === "r") peer.ack(0);
          else conn.received.push(el);
        });
        onReady(conn);
      })
      .catch(() => socket.destroy());
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
