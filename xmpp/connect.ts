/**
 * How the session reaches its server: the default `connect` of SessionOptions. Where (a resumption
 * location, the configured host:port, DNS SRV, the domain) and how (TCP, then Direct TLS when
 * configured; STARTTLS comes later, in negotiation). Tests pass another `connect` that hands out
 * in-memory connections (xmpp/testing/).
 */
import type { Logger } from "../kernel/log.js";
import type { Timers } from "../kernel/timers.js";
import { Connection } from "./connection.js";
import { preferEndpoint, type WeightedEndpoint } from "./endpoints.js";
import { connectTcp, type Endpoint, parseHostPort, resolveEndpoints, startTls, type TlsOptions } from "./transport.js";
import type { XmlStreamLimits } from "./xml-stream.js";

export interface ConnectTarget {
  /** The JID's domain: the stream's `to`, and the SRV name. */
  domain: string;
  /** XEP-0198 §5: where the server asked to be reached for a resumption, if it named a place. */
  location: string | undefined;
  /** Configured endpoints (xmpp.server or xmpp.servers); empty: DNS decides. */
  servers: readonly WeightedEndpoint[];
  /** Tried first when present: where the session to resume lives (xmpp/endpoints.ts, affinity). */
  preferred: Endpoint | undefined;
  /** Draws the order among endpoints of one priority. */
  random: () => number;
  directTls: boolean;
  tls: TlsOptions;
  connectTimeoutMs: number;
  tlsTimeoutMs: number;
  limits: XmlStreamLimits;
  timers: Timers;
  log: Logger;
}

export type ConnectFn = (target: ConnectTarget) => Promise<Connection>;

/**
 * Tries each endpoint in turn (the server's resumption location, else the preferred one, then the
 * rest in priority/weight order); the last failure is thrown when none answers. The Connection
 * carries the endpoint it reached (`remote`).
 */
export const connectToServer: ConnectFn = async (t) => {
  let endpoints: Endpoint[];
  if (t.location) {
    // XEP-0198 §5: the server may name where to resume; the certificate is still checked.
    endpoints = [/:\d+$/.test(t.location) ? parseHostPort(t.location) : { host: t.location, port: 5222 }];
  } else {
    endpoints = preferEndpoint(await resolveEndpoints(t.domain, t.directTls, t.servers, t.random), t.preferred);
  }
  let lastErr: unknown;
  for (const ep of endpoints) {
    try {
      const tcp = await connectTcp(ep, t.connectTimeoutMs);
      const socket = t.directTls ? await startTls(tcp, t.tls, t.tlsTimeoutMs) : tcp;
      return new Connection(socket, t.domain, t.limits, { timers: t.timers, remote: ep });
    } catch (err) {
      lastErr = err;
      t.log.debug("endpoint failed", { host: ep.host, port: ep.port, error: err });
    }
  }
  throw lastErr;
};
