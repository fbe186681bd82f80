/**
 * Byte transport for one XMPP connection: TCP (plain, to be upgraded by STARTTLS) or Direct TLS
 * (XEP-0368), with the server's certificate checked against a configured CA and, optionally,
 * pinned by SHA-256. Knows nothing of XML.
 */
import { createHash, X509Certificate } from "node:crypto";
import { promises as dns } from "node:dns";
import { readFileSync } from "node:fs";
import net from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { AgentError } from "../kernel/errors.js";
import { orderEndpoints, type WeightedEndpoint } from "./endpoints.js";

export class TransportError extends AgentError {}

/** What negotiation reads from an encrypted link: for logs, and the data SCRAM -PLUS binds to. */
export interface TlsChannel {
  getProtocol(): string | null;
  getCipher(): { name: string };
  getFinished(): Buffer | undefined;
  exportKeyingMaterial(length: number, label: string, context: Buffer): Buffer;
  getPeerCertificate(): { raw?: Buffer };
}

export interface Endpoint {
  host: string;
  port: number;
}

export interface TlsOptions {
  /** Name checked against the certificate: the JID's domain unless configured otherwise. */
  servername: string;
  /** PEM text of trusted CAs; undefined means the system store. */
  ca?: string;
  /** Where `ca` came from, for errors a person reads ("xmpp.caFile /etc/iot-agent/server-ca.pem"). */
  caSource?: string;
  /** Lowercase hex SHA-256 of the server certificate's DER. */
  pinSha256?: string;
  /** The client certificate and its key (PEM), presented when the server asks (SASL EXTERNAL). */
  cert?: string;
  key?: string;
}

export function readCaFile(path: string): string {
  return readPemFile(path, "CA file", "tls_ca_unreadable");
}

/** Reads a PEM file (CA, client certificate, key); a person reads the error. */
export function readPemFile(path: string, what: string, code = "tls_file_unreadable"): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new TransportError(code, `cannot read ${what} ${path}: ${(err as Error).message}`, { path }, { cause: err });
  }
}

/** "host:port" or "[v6]:port" */
export function parseHostPort(s: string): Endpoint {
  const m = /^\[([0-9a-fA-F:]+)\]:(\d+)$/.exec(s) ?? /^([^:[\]]+):(\d+)$/.exec(s);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || !(port > 0 && port < 65536))
    throw new TransportError("bad_endpoint", `not a host:port: ${s}`, { value: s });
  return { host: m[1]!, port };
}

/**
 * Where to connect, in the order to try: the configured endpoints (xmpp.server, or xmpp.servers
 * ordered by priority and weight), else the domain's SRV records (RFC 6120 §3.2, ordered the same
 * way: xmpp/endpoints.ts), else the domain on the default port.
 */
export async function resolveEndpoints(
  domain: string,
  directTls: boolean,
  configured: readonly WeightedEndpoint[] = [],
  random: () => number = Math.random,
): Promise<Endpoint[]> {
  if (configured.length > 0) return orderEndpoints(configured, random);
  const service = directTls ? "_xmpps-client._tcp" : "_xmpp-client._tcp";
  try {
    const records = await dns.resolveSrv(`${service}.${domain}`);
    // "." as target means the service is decidedly not available (RFC 2782).
    const usable = records.filter((r) => r.name !== "." && r.name !== "");
    if (records.length > 0 && usable.length === 0) {
      throw new TransportError("srv_no_service", `${domain} says it offers no XMPP client service`, { domain });
    }
    if (usable.length > 0)
      return orderEndpoints(
        usable.map((r) => ({ host: r.name, port: r.port, priority: r.priority, weight: r.weight })),
        random,
      );
  } catch (err) {
    if (err instanceof TransportError) throw err;
    // No SRV record is normal: fall back to the domain itself.
  }
  return [{ host: domain, port: directTls ? 5223 : 5222 }];
}

export function connectTcp(ep: Endpoint, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: ep.host, port: ep.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new TransportError("connect_timeout", `TCP connect to ${ep.host}:${ep.port} timed out after ${timeoutMs} ms`, {
          ...ep,
        }),
      );
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
      resolve(socket);
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(
        new TransportError(
          "connect_failed",
          `TCP connect to ${ep.host}:${ep.port} failed: ${err.message}`,
          { ...ep },
          { cause: err },
        ),
      );
    });
  });
}

function certFingerprint(cert: { raw?: Buffer }): string | undefined {
  if (!cert.raw) return undefined;
  return new X509Certificate(cert.raw).fingerprint256.replace(/:/g, "").toLowerCase();
}

/** Starts TLS over `socket` (STARTTLS), or over a fresh TCP socket for Direct TLS. */
export function startTls(socket: Duplex, opts: TlsOptions, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    let pinError: TransportError | undefined;
    const tlsSocket = tls.connect({
      socket,
      servername: opts.servername,
      ...(opts.ca ? { ca: opts.ca } : {}),
      ...(opts.cert && opts.key ? { cert: opts.cert, key: opts.key } : {}),
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
      checkServerIdentity: (host, cert) => {
        const identityError = tls.checkServerIdentity(host, cert);
        if (identityError) return identityError;
        if (opts.pinSha256) {
          const actual = certFingerprint(cert);
          if (actual !== opts.pinSha256) {
            pinError = new TransportError("tls_pin_mismatch", "server certificate does not match the configured pin", {
              expected: opts.pinSha256,
              actual,
            });
            return pinError;
          }
        }
        return undefined;
      },
    });
    const timer = setTimeout(() => {
      tlsSocket.destroy();
      reject(new TransportError("tls_timeout", `TLS handshake timed out after ${timeoutMs} ms`, {}));
    }, timeoutMs);
    tlsSocket.once("secureConnect", () => {
      clearTimeout(timer);
      tlsSocket.removeAllListeners("error");
      resolve(tlsSocket);
    });
    tlsSocket.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      tlsSocket.destroy();
      if (pinError) return reject(pinError);
      // A certificate the agent will not trust is a configuration problem; a reset mid-handshake is weather.
      const certProblem = err.code !== undefined && (CERT_ERRORS.has(err.code) || err.code.startsWith("ERR_TLS_CERT"));
      reject(
        new TransportError(
          certProblem ? "tls_cert_rejected" : "tls_failed",
          `TLS handshake with ${opts.servername} failed: ${err.message}${certProblem ? ` (trusted CAs: ${opts.caSource ?? (opts.ca ? "the configured CA" : "the system CA store; set xmpp.caFile for a private CA")})` : ""}`,
          {
            servername: opts.servername,
            reason: err.code,
            ...(certProblem ? { trust: opts.caSource ?? "system" } : {}),
          },
          { cause: err },
        ),
      );
    });
  });
}

/** OpenSSL verification results (X509_V_ERR_*) as Node names them. */
const CERT_ERRORS = new Set([
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_REVOKED",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "INVALID_CA",
  "HOSTNAME_MISMATCH",
]);

/**
 * Channel-binding data for SCRAM-*-PLUS (RFC 5802 §6), choosing the type the server can check:
 * - when the server lists its types (XEP-0440): tls-exporter (RFC 9266) on TLS 1.3, else
 *   tls-server-end-point (RFC 5929 §4), else tls-unique on TLS 1.2;
 * - when it lists none, tls-unique, RFC 5802's default, which is what servers that predate
 *   XEP-0440 check (ejabberd 23.01 among them; seen: it refuses tls-exporter).
 */
export function channelBinding(
  socket: TlsChannel,
  advertised: string[] | undefined,
): { type: "tls-exporter" | "tls-unique" | "tls-server-end-point"; data: Buffer } | undefined {
  const version = socket.getProtocol();
  const unique = () => {
    const finished = socket.getFinished();
    return finished ? { type: "tls-unique" as const, data: finished } : undefined;
  };
  if (!advertised) return unique();
  if (advertised.includes("tls-exporter") && version === "TLSv1.3") {
    return { type: "tls-exporter", data: socket.exportKeyingMaterial(32, "EXPORTER-Channel-Binding", Buffer.alloc(0)) };
  }
  if (advertised.includes("tls-server-end-point")) {
    const cert = socket.getPeerCertificate();
    if (cert?.raw) return { type: "tls-server-end-point", data: endPointHash(cert.raw) };
  }
  if (advertised.includes("tls-unique") && version === "TLSv1.2") return unique();
  return undefined;
}

/**
 * RFC 5929 §4.1: the certificate hashed with its signature's hash (SHA-256 for MD5/SHA-1).
 * Node does not expose the signature algorithm, so SHA-256 is used: right for the SHA-256-signed
 * certificates servers use today, wrong (auth fails, visibly) for SHA-384/512-signed ones.
 */
function endPointHash(der: Buffer): Buffer {
  return createHash("sha256").update(der).digest();
}
