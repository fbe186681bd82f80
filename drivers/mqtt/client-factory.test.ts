import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { after, before, describe, it } from "node:test";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { brokerOptions, commonJsDefault, connectMqttClient } from "./client-factory.js";
import { BROKER_URL_PATTERN } from "./config.js";

describe("brokerOptions: what connectMqttClient gives MqttClient", () => {
  it("takes protocol, host and port from the URL; no port is 1883 or 8883", () => {
    const o = brokerOptions("mqtt://127.0.0.1:1884");
    assert.deepEqual([o.protocol, o.host, o.hostname, o.port], ["mqtt", "127.0.0.1", "127.0.0.1", 1884]);
    assert.equal(brokerOptions("mqtt://broker.lan").port, 1883);
    assert.equal(brokerOptions("mqtt://broker.lan/").port, 1883);
    assert.equal(brokerOptions("mqtts://broker.lan").port, 8883);
    assert.equal(brokerOptions("mqtts://broker.lan:0").port, 8883, "port 0 is the default, as in MQTT.js");
    assert.equal(brokerOptions("mqtt://Broker.LAN:1").host, "broker.lan");
    const v6 = brokerOptions("mqtts://[::1]:8884/");
    assert.deepEqual([v6.host, v6.port], ["::1", 8884]);
    assert.equal("path" in brokerOptions("mqtt://h:1", { path: "/x" }), false, "no unix socket path");
  });

  it("the caller's options win over the URL; it returns a new object and leaves the caller's alone", () => {
    const given: IClientOptions = { port: 2000, clientId: "c", keepalive: 5 };
    const o = brokerOptions("mqtt://h:1883", given);
    assert.deepEqual([o.port, o.clientId, o.keepalive], [2000, "c", 5]);
    assert.deepEqual(given, { port: 2000, clientId: "c", keepalive: 5 });
  });

  it("TLS: servername is the host unless it is an IP address or given; rejectUnauthorized unless false", () => {
    const named = brokerOptions("mqtts://broker.lan:8883");
    assert.equal(named.servername, "broker.lan");
    assert.equal(named.rejectUnauthorized, true);
    assert.equal(brokerOptions("mqtts://10.0.0.1:8883").servername, undefined);
    assert.equal(brokerOptions("mqtts://[fe80::1]:8883").servername, undefined);
    assert.equal(brokerOptions("mqtts://10.0.0.1:8883", { servername: "broker.lan" }).servername, "broker.lan");
    assert.equal(brokerOptions("mqtts://broker.lan", { servername: "other" }).servername, "other");
    assert.equal(brokerOptions("mqtts://h", { rejectUnauthorized: false }).rejectUnauthorized, false);
    const plain = brokerOptions("mqtt://broker.lan");
    assert.equal(plain.servername, undefined);
    assert.equal(plain.rejectUnauthorized, undefined);
  });

  it("a client certificate and key turn mqtt:// into mqtts://", () => {
    const o = brokerOptions("mqtt://broker.lan", { cert: "C", key: "K" });
    assert.deepEqual([o.protocol, o.port, o.servername], ["mqtts", 8883, "broker.lan"]);
    assert.equal(brokerOptions("mqtt://broker.lan", { cert: "C" }).protocol, "mqtt");
  });

  it("refuses what it cannot serve, at once", () => {
    for (const url of [
      "ws://h:80",
      "tcp://h:1883",
      "mqtt://u:p@h:1883",
      "mqtt://h:1883/path",
      "mqtt://h:1883?clientId=x",
      "mqtt://h:99999",
      "mqtt+unix:///run/mqtt.sock",
      "mqtt://",
      "h:1883",
    ])
      assert.throws(() => brokerOptions(url), /unsupported MQTT|out of range/, url);
    assert.throws(() => brokerOptions("mqtt://h", { protocol: "ws" }), /unsupported MQTT protocol/);
    assert.throws(() => brokerOptions("mqtt://h", { clean: false }), /Missing clientId/);
    assert.doesNotThrow(() => brokerOptions("mqtt://h", { clean: false, clientId: "c" }));
  });

  it("reads every URL the config accepts as MQTT.js's connect() does", () => {
    const urls = [
      "mqtt://127.0.0.1:1883",
      "mqtt://broker.lan",
      "mqtts://Broker.Example.COM:8884/",
      "mqtts://[::1]:8883",
      "mqtts://[2001:db8::1]",
      "mqtt://localhost:65535",
    ];
    for (const url of urls) {
      assert.match(url, BROKER_URL_PATTERN);
      const theirs = mqtt.connect(url, { manualConnect: true }).options;
      const ours = brokerOptions(url);
      assert.equal(ours.protocol, theirs.protocol, url);
      assert.equal(ours.host, theirs.host, url);
      // MQTT.js applies the default port when it opens the socket.
      assert.equal(ours.port, theirs.port ?? (theirs.protocol === "mqtts" ? 8883 : 1883), url);
    }
  });
});

/** Answers CONNECT with a CONNACK (MQTT 3.1.1, accepted) and records what it saw. */
function fakeBroker(socket: Socket, seen: Socket[]): void {
  seen.push(socket);
  socket.once("data", () => socket.write(Buffer.from([0x20, 0x02, 0x00, 0x00])));
  socket.on("error", () => undefined);
}

async function listen(server: Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

function events(client: MqttClient): { errors: Error[]; connects: number; closes: number } {
  const seen = { errors: [] as Error[], connects: 0, closes: 0 };
  client.on("error", (err) => seen.errors.push(err));
  client.on("connect", () => seen.connects++);
  client.on("close", () => seen.closes++);
  return seen;
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const base: IClientOptions = { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, clientId: "t" };

describe("connectMqttClient over TCP", () => {
  it("connects to the URL's host and port, and again on reconnect()", async () => {
    const seen: Socket[] = [];
    const server = createTcpServer((s) => fakeBroker(s, seen));
    const port = await listen(server);
    const client = connectMqttClient(`mqtt://127.0.0.1:${port}`, base);
    try {
      const ev = events(client);
      await until(() => ev.connects === 1, "connect");
      assert.equal(client.options.protocol, "mqtt");
      seen[0]!.destroy();
      await until(() => ev.closes === 1, "close");
      client.reconnect();
      await until(() => ev.connects === 2, "second connect");
      assert.equal(seen.length, 2);
    } finally {
      await client.endAsync(true);
      server.close();
    }
  });

  it("a refused connection is an 'error' (ECONNREFUSED) and a 'close' on the client", async () => {
    const server = createTcpServer();
    const port = await listen(server);
    server.close();
    await once(server, "close");
    const client = connectMqttClient(`mqtt://127.0.0.1:${port}`, base);
    try {
      const ev = events(client);
      await until(() => ev.closes === 1, "close");
      assert.equal((ev.errors[0] as NodeJS.ErrnoException | undefined)?.code, "ECONNREFUSED");
    } finally {
      await client.endAsync(true);
    }
  });

  it("an error nobody listens for does not throw (the client has a listener of its own)", async () => {
    const server = createTcpServer();
    const port = await listen(server);
    server.close();
    await once(server, "close");
    const client = connectMqttClient(`mqtt://127.0.0.1:${port}`, base);
    // (events.once would listen for 'error' itself.)
    await new Promise<void>((resolve) => client.once("close", () => resolve()));
    await client.endAsync(true);
  });
});

describe("connectMqttClient over TLS (a self-signed certificate for DNS:localhost)", () => {
  let dir: string;
  let cert: Buffer;
  let key: Buffer;
  let server: Server;
  let port: number;
  const seen: TLSSocket[] = [];
  /** The server names clients asked for (SNI), in order. */
  const sni: string[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "mqtt-client-factory-"));
    execFileSync(
      "openssl",
      [
        ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"],
        ...["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        ...["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")],
      ],
      { stdio: "ignore" },
    );
    cert = readFileSync(join(dir, "cert.pem"));
    key = readFileSync(join(dir, "key.pem"));
    server = createTlsServer(
      {
        cert,
        key,
        SNICallback: (name, cb) => {
          sni.push(name);
          cb(null);
        },
      },
      (s) => fakeBroker(s, seen),
    );
    server.on("tlsClientError", () => undefined);
    port = await listen(server);
  });

  after(() => {
    server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("connects with the CA and a servername for an IP URL, and sends that name (SNI)", async () => {
    const client = connectMqttClient(`mqtts://127.0.0.1:${port}`, { ...base, ca: cert, servername: "localhost" });
    try {
      const ev = events(client);
      await until(() => ev.connects === 1, "connect");
      assert.deepEqual(ev.errors, []);
      assert.equal(seen.at(-1)!.servername, "localhost");
      assert.equal(sni.at(-1), "localhost");
      assert.equal(client.options.protocol, "mqtts");
    } finally {
      await client.endAsync(true);
    }
  });

  it("an IP URL sends no servername, so a certificate for a name does not match: 'error', no connect", async () => {
    const before = sni.length;
    const client = connectMqttClient(`mqtts://127.0.0.1:${port}`, { ...base, ca: cert });
    try {
      const ev = events(client);
      await until(() => ev.closes >= 1, "close");
      assert.equal(ev.connects, 0);
      assert.equal((ev.errors[0] as NodeJS.ErrnoException | undefined)?.code, "ERR_TLS_CERT_ALTNAME_INVALID");
      assert.equal(sni.length, before, "no SNI sent");
    } finally {
      await client.endAsync(true);
    }
  });

  it("an untrusted certificate is an 'error' on the client; rejectUnauthorized: false connects anyway", async () => {
    const strict = connectMqttClient(`mqtts://127.0.0.1:${port}`, { ...base, servername: "localhost" });
    try {
      const ev = events(strict);
      await until(() => ev.closes >= 1, "close");
      assert.equal(ev.connects, 0);
      assert.match(String((ev.errors[0] as NodeJS.ErrnoException | undefined)?.code), /SELF_SIGNED/);
    } finally {
      await strict.endAsync(true);
    }
    const lax = connectMqttClient(`mqtts://127.0.0.1:${port}`, { ...base, rejectUnauthorized: false });
    try {
      const ev = events(lax);
      await until(() => ev.connects === 1, "connect");
      assert.deepEqual(ev.errors, []);
    } finally {
      await lax.endAsync(true);
    }
  });

  it("a handshake that ends without an authorised certificate is a 'TLS not authorized' error", async () => {
    // Node itself fails such a handshake first; played here by announcing it before the real one.
    const client = connectMqttClient(`mqtts://127.0.0.1:${port}`, { ...base, ca: cert, servername: "localhost" });
    try {
      const ev = events(client);
      const socket = client.stream as TLSSocket;
      assert.equal(socket.authorized, false);
      socket.emit("secureConnect");
      await until(() => ev.errors.length >= 1, "error");
      assert.equal(ev.errors[0]?.message, "TLS not authorized");
      assert.equal(socket.writableEnded, true, "the socket is ended");
    } finally {
      await client.endAsync(true);
    }
  });
});

describe("commonJsDefault", () => {
  it("takes the class from module.exports (Node's ES module import) or as it is (CommonJS interop)", () => {
    class C {}
    assert.equal(commonJsDefault({ default: C }), C);
    assert.equal(commonJsDefault(C as unknown as { default: typeof C }), C);
  });
});
