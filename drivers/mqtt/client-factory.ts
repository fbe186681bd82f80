/**
 * Our own connect for MQTT.js: `connectMqttClient(url, options)` builds the library's public
 * `new MqttClient(streamBuilder, options)` over a plain TCP socket (mqtt://) or a TLS socket
 * (mqtts://), the only two kinds of broker URL a config can hold (config.ts, BROKER_URL_PATTERN).
 *
 * Why not mqtt.connect(): memory. `mqtt`'s index module brings in its connect module, whose table
 * of transports requires, at the first connect, every one of them: WebSockets (the ws package and,
 * through it, Node's http, https and zlib), SOCKS proxies (socks, ip-address) and the TCP and TLS
 * ones we use. The agent speaks mqtt:// and mqtts:// only. Importing MqttClient and Store from their
 * own modules (mqtt/lib/client, mqtt/lib/store) leaves all of that unloaded: MQTT.js bundled into
 * dist/vendor/mqtt.cjs went from 382 KiB to 244 KiB of source (scripts/build.mjs).
 *
 * What mqtt.connect() does for these two protocols, this does too:
 * - host, port and protocol come from the URL, options given by the caller win over them; the
 *   host is lower-cased and an IPv6 host loses its brackets;
 * - no port, or port 0: 1883 for mqtt://, 8883 for mqtts://;
 * - a client certificate and key (cert and key both set) turn mqtt:// into mqtts://;
 * - clean: false without a clientId is refused (the broker could not find the session again);
 * - TLS: the servername (SNI, and the name the certificate must hold) is the host unless the host
 *   is an IP address or one is given; rejectUnauthorized is on unless set to false; until the
 *   handshake succeeds, a socket error is emitted on the client (with rejectUnauthorized) and the
 *   socket is ended, and a handshake that completes without an authorised certificate is such an
 *   error ("TLS not authorized");
 * - the client gets an 'error' listener that does nothing, so an error with no listener of the
 *   caller's cannot throw.
 * MqttClient itself fills in the rest (a random clientId, keepalive, resubscribe, ...).
 *
 * Left out, because our URLs cannot ask for them: WebSockets, unix sockets, SOCKS proxies (MQTT.js
 * reads MQTTJS_SOCKS_PROXY; this ignores it), `servers` lists, user:password@ and ?clientId= in the
 * URL. A URL of another form is an error thrown at once.
 */
import { createConnection, isIP } from "node:net";
import { type ConnectionOptions, connect as connectTls, type TLSSocket } from "node:tls";
import type { IClientOptions, MqttClient } from "mqtt";
// Runtime values only from MQTT.js's own modules, never from "mqtt" (see above).
import clientModule from "mqtt/lib/client";

/**
 * The class a module of MQTT.js exports (CommonJS, `exports.default = MqttClient`). Node gives an
 * ES module a CommonJS module.exports as its default import, so the class is at `.default` (also
 * in our esbuild bundles, which follow Node here); a CommonJS transpile of our source (tsx loading
 * it for a CommonJS caller) honours `__esModule` and gives the class itself.
 */
export function commonJsDefault<T>(imported: { default: T }): T {
  return (
    typeof imported === "object" && imported !== null && "default" in imported ? imported.default : imported
  ) as T;
}

const MqttClientClass = commonJsDefault(clientModule);

/** mqtt[s]://host[:port][/], host a name, an IPv4 address or an IPv6 address in brackets. */
const URL_PATTERN = /^(mqtts?):\/\/(?:\[([0-9a-fA-F:]+)\]|([^\s:/[\]@]+))(?::(\d{1,5}))?\/?$/;

export type BrokerOptions = IClientOptions & { protocol: "mqtt" | "mqtts"; host: string; port: number };

/**
 * The options connectMqttClient gives MqttClient for `url`: the caller's options over what the URL
 * says, with the defaults above applied. Throws on a URL it cannot serve. A new object each call.
 */
export function brokerOptions(url: string, options: IClientOptions = {}): BrokerOptions {
  const m = URL_PATTERN.exec(url);
  if (!m)
    throw new Error(
      `unsupported MQTT broker URL ${JSON.stringify(url)}: expected mqtt://host:port or mqtts://host:port`,
    );
  const fromUrl: IClientOptions = { protocol: m[1] as "mqtt" | "mqtts", host: (m[2] ?? m[3] ?? "").toLowerCase() };
  if (m[4] !== undefined) fromUrl.port = Number(m[4]);
  const opts: IClientOptions = { ...fromUrl, ...options };
  if (opts.cert && opts.key && opts.protocol === "mqtt") opts.protocol = "mqtts";
  if (opts.protocol !== "mqtt" && opts.protocol !== "mqtts")
    throw new Error(`unsupported MQTT protocol ${JSON.stringify(opts.protocol)}: mqtt or mqtts only`);
  if (opts.clean === false && !opts.clientId) throw new Error("Missing clientId for unclean clients");
  const tls = opts.protocol === "mqtts";
  const port = opts.port || (tls ? 8883 : 1883);
  if (port > 65535) throw new Error(`MQTT broker port ${port} is out of range`);
  const host = opts.hostname || opts.host || "localhost";
  const out: BrokerOptions = { ...opts, protocol: opts.protocol, host, hostname: host, port };
  delete out.path; // net and tls would take it for a unix socket path
  if (tls) {
    if (isIP(host) === 0 && !out.servername) out.servername = host;
    out.rejectUnauthorized = out.rejectUnauthorized !== false;
  }
  return out;
}

/**
 * A connecting MqttClient for mqtt:// or mqtts:// (see the header). Throws at once on a URL or
 * options it cannot serve, like mqtt.connect(); socket errors arrive as the client's 'error'.
 */
export function connectMqttClient(url: string, options: IClientOptions = {}): MqttClient {
  const opts = brokerOptions(url, options);
  // Called by MqttClient for the first connection and for each reconnect.
  const streamBuilder = (client: MqttClient) =>
    opts.protocol === "mqtts" ? tlsStream(client, opts) : createConnection({ host: opts.host, port: opts.port });
  const client = new MqttClientClass(streamBuilder, opts);
  client.on("error", () => undefined);
  return client;
}

function tlsStream(client: MqttClient, opts: BrokerOptions): TLSSocket {
  // All options go to tls.connect, as MQTT.js does: ca, cert, key, servername, rejectUnauthorized
  // and whatever other TLS option a caller adds; it ignores the MQTT ones.
  const socket = connectTls(opts as ConnectionOptions);
  const beforeHandshake = (err: Error) => {
    if (opts.rejectUnauthorized) client.emit("error", err);
    socket.end();
  };
  socket.on("error", beforeHandshake);
  socket.on("secureConnect", () => {
    if (opts.rejectUnauthorized && !socket.authorized) socket.emit("error", new Error("TLS not authorized"));
    else socket.removeListener("error", beforeHandshake);
  });
  return socket;
}
