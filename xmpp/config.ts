/** The `xmpp` section of the agent config: connection, security, and every bound of the session. */
import {
  arr,
  bool,
  type Ctx,
  def,
  HOST_PORT_PATTERN,
  hostPort,
  INVALID,
  type Invalid,
  int,
  jid,
  ms,
  obj,
  oneOf,
  opt,
  refine,
  type Schema,
  str,
} from "../kernel/schema-dsl.js";
import type { WeightedEndpoint } from "./endpoints.js";
import { parseHostPort } from "./transport.js";

const serverEntryObject = obj({
  address: hostPort(),
  /** Lower is tried first, as an SRV record's priority. */
  priority: def(int({ min: 0, max: 65_535 }), 0),
  /** Share among the entries of one priority, as an SRV record's weight. */
  weight: def(int({ min: 0, max: 65_535 }), 1),
});

/** One entry of xmpp.servers: "host:port", or { address: host:port, priority, weight }. */
function serverEntry(): Schema<WeightedEndpoint> {
  return {
    describe: "host:port, or a mapping with address, priority and weight",
    parse(v: unknown, ctx: Ctx): WeightedEndpoint | Invalid {
      const e = typeof v === "string" ? { address: v, priority: 0, weight: 1 } : serverEntryObject.parse(v, ctx);
      if (e === INVALID) return INVALID;
      const at = typeof v === "string" ? ctx : ctx.at("address");
      if (!HOST_PORT_PATTERN.test(e.address))
        return at.fail(`must be host:port, e.g. xmpp1.example.net:5222, got ${JSON.stringify(e.address)}`);
      try {
        return { ...parseHostPort(e.address), priority: e.priority, weight: e.weight };
      } catch (err) {
        return at.fail((err as Error).message);
      }
    },
  };
}

export const xmppConfigSchema = obj(
  {
    /** The device's JID. A resource part, if given, is requested at bind. */
    jid: jid(),
    /** Inline password; prefer passwordFile (mode 0600) or AGENT_PASSWORD_FILE. */
    password: opt(str({ minLength: 1 })),
    passwordFile: opt(str({ minLength: 1 })),
    /** host:port to connect to; without it (and servers) the domain's _xmpp-client._tcp SRV record is used. */
    server: opt(hostPort()),
    /**
     * Several endpoints (the nodes of a cluster), tried like SRV records: by priority, then in a
     * weighted random order, failing over to the next; a resumption tries the last node first.
     */
    servers: opt(arr(serverEntry(), { minItems: 1, maxItems: 64 })),
    /** XEP-0368: TLS from the first byte instead of STARTTLS. */
    directTls: def(bool(), false),
    /** PEM file of the CA (or the self-signed server certificate) to trust instead of the system store. */
    caFile: opt(str()),
    /** Optional pin: SHA-256 of the server certificate's DER, hex with or without colons. */
    pinSha256: opt(
      refine(str(), (v, ctx) => {
        const hex = v.replace(/:/g, "").toLowerCase();
        return /^[0-9a-f]{64}$/.test(hex) ? hex : ctx.fail("must be 64 hex digits (SHA-256 of the certificate)");
      }),
    ),
    /**
     * The device's client certificate (PEM, issued by the fleet CA, id-on-xmppAddr = the JID),
     * presented in every TLS handshake; with it the agent can log in with SASL EXTERNAL, and needs
     * no password when the server accepts that (docs/xmpp-session.md).
     */
    clientCertFile: opt(str({ minLength: 1 })),
    /** The certificate's private key (PEM, mode 0600); required with clientCertFile. */
    clientKeyFile: opt(str({ minLength: 1 })),
    /** TLS server name if it differs from the JID's domain. */
    tlsServername: opt(str()),
    resource: def(str({ minLength: 1, maxLength: 64 }), "agent"),
    /** SASL PLAIN is refused unless this is true (and even then only over TLS). */
    allowPlain: def(bool(), false),
    /** Order of preference; mechanisms the server does not offer are skipped. */
    saslMechanisms: def(
      refine(str(), (v) => v.split(/[\s,]+/).filter(Boolean)),
      ["EXTERNAL", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"],
    ),
    /**
     * XEP-0388 SASL2, used when the server offers it: no stream restart after authentication,
     * and what rides inside it (docs/xmpp-session.md, "Fewer round trips").
     */
    sasl2: obj({
      enabled: def(bool(), true),
      /** XEP-0484 FAST: ask for a token and log in with it next time (one round trip, no SCRAM). */
      fast: def(bool(), true),
      /**
       * XEP-0386 Bind2: bind (and enable XEP-0198) inside authentication. Off by default: the
       * server then picks the resource (Prosody: "agent~" and a hash), while iot-fleet and
       * operators' scripts address the device as JID/resource.
       */
      bind2: def(bool(), false),
      /** Where the FAST token and the client id are kept (0600). Default: device.dataDir/xmpp-fast-token.json. */
      tokenFile: opt(str({ minLength: 1 })),
    }),
    streamManagement: obj({
      enabled: def(bool(), true),
      /** Unacked outbound stanzas kept for re-send; when full, send() waits (backpressure). */
      maxQueue: def(int({ min: 1, max: 100_000 }), 1000),
      /** Request an ack after this many unacked stanzas... */
      ackEvery: def(int({ min: 1, max: 10_000 }), 10),
      /** ...or this long after the first unacked stanza. */
      ackDelayMs: def(ms({ min: 10 }), 500),
      /** Resumption lifetime we ask for (seconds); the server's `max` wins when smaller. */
      resumeMaxSeconds: def(int({ min: 0, max: 86_400 }), 600),
      /**
       * At most this many queued stanzas may be replies to non-operators; the rest of maxQueue stays
       * free for telemetry and operators during a stranger's flood. Replies beyond it are dropped.
       */
      maxStrangerReplies: def(int({ min: 1, max: 100_000 }), 100),
    }),
    keepalive: obj({
      /** Idle time after which liveness is probed (an SM <r/>, or an XEP-0199 ping without SM). */
      idleMs: def(ms({ min: 1000 }), 60_000),
      /** A probe unanswered within this time declares the link dead. */
      timeoutMs: def(ms({ min: 500 }), 20_000),
      /** Whitespace keepalive interval for NATs that drop idle flows; 0 disables. */
      whitespaceMs: def(ms(), 0),
    }),
    reconnect: obj({
      initialDelayMs: def(ms({ min: 10 }), 1_000),
      maxDelayMs: def(ms({ min: 100 }), 300_000),
      factor: def(int({ min: 1, max: 10 }), 2),
      /** After an authentication failure the server will not change its mind soon: wait at least this. */
      authFailureDelayMs: def(ms({ min: 1000 }), 600_000),
      /**
       * A refused login is retried this many times on the normal backoff before the agent waits
       * authFailureDelayMs: a server may refuse a right password while its account store is out of
       * reach (ejabberd answers a failed SQL query with not-authorized, docs/servers.md).
       */
      authFailureRetries: def(int({ min: 0, max: 10 }), 2),
    }),
    limits: obj({
      /**
       * Largest inbound stanza, counted as decoded content (names, attribute values, text); a
       * larger one is skipped (an IQ request is answered policy-violation) and the stream stays up.
       * Also the largest stanza the agent sends.
       */
      maxStanzaBytes: def(int({ min: 1024, max: 64 * 1024 * 1024 }), 256 * 1024),
      /** Deepest element nesting inside a stanza; deeper stanzas are skipped. */
      maxDepth: def(int({ min: 4, max: 1000 }), 32),
      /** Most attributes on one element; stanzas with more are skipped. */
      maxAttributes: def(int({ min: 8, max: 10_000 }), 64),
      /**
       * Input bytes of one inbound element past which the connection is dropped (and resumed)
       * rather than the element skipped: skipping still buffers an unfinished text or attribute.
       */
      ceilingBytes: def(int({ min: 4096, max: 512 * 1024 * 1024 }), 2 * 1024 * 1024),
      /** Outstanding IQ requests we wait on. */
      maxPendingIq: def(int({ min: 1, max: 10_000 }), 256),
    }),
    timeouts: obj({
      connectMs: def(ms({ min: 100 }), 15_000),
      /** Each negotiation step (features, TLS, SASL, bind, enable/resume). */
      negotiationMs: def(ms({ min: 100 }), 20_000),
      iqMs: def(ms({ min: 100 }), 30_000),
    }),
    /**
     * Inbound budgets per sender (token buckets, by bare JID): over budget a stanza is dropped and
     * counted (status shows it), and an IQ request answered resource-constraint at most once a
     * second per sender. The server, its components and the device's own account are exempt.
     */
    inbound: obj({
      operator: obj({
        perSecond: def(int({ min: 1, max: 1_000_000 }), 100),
        burst: def(int({ min: 1, max: 1_000_000 }), 300),
      }),
      /** Each non-operator account. */
      stranger: obj({
        perSecond: def(int({ min: 1, max: 1_000_000 }), 5),
        burst: def(int({ min: 1, max: 1_000_000 }), 20),
      }),
      /** All non-operator accounts together. */
      strangersTotal: obj({
        perSecond: def(int({ min: 1, max: 1_000_000 }), 50),
        burst: def(int({ min: 1, max: 1_000_000 }), 100),
      }),
      /** Senders remembered at once; the least recently seen is forgotten first. */
      maxSenders: def(int({ min: 16, max: 1_000_000 }), 1024),
    }),
    /** disco#info identity type: "device" or "bot". */
    identityType: def(oneOf(["device", "bot"]), "device"),
    /**
     * Who gets an answer to XEP-0092 software version: "operators" (default: a stranger on the
     * server learns nothing about the agent), "everyone", or "nobody". Others get service-unavailable.
     */
    softwareVersionTo: def(oneOf(["operators", "everyone", "nobody"]), "operators"),
  },
  {
    check(v, ctx) {
      if (v.server !== undefined && v.servers !== undefined)
        ctx.at("servers").fail("set either xmpp.server or xmpp.servers, not both");
      if (v.password === undefined && v.passwordFile === undefined && v.clientCertFile === undefined)
        ctx
          .at("password")
          .fail(
            "is required: set xmpp.password, xmpp.passwordFile, AGENT_PASSWORD or AGENT_PASSWORD_FILE (or xmpp.clientCertFile for a certificate login)",
          );
      if ((v.clientCertFile === undefined) !== (v.clientKeyFile === undefined))
        ctx
          .at(v.clientCertFile === undefined ? "clientCertFile" : "clientKeyFile")
          .fail("clientCertFile and clientKeyFile go together");
      if (v.limits.ceilingBytes < v.limits.maxStanzaBytes)
        ctx.at("limits").at("ceilingBytes").fail(`must be >= limits.maxStanzaBytes (${v.limits.maxStanzaBytes})`);
      if (v.streamManagement.maxStrangerReplies > v.streamManagement.maxQueue)
        ctx
          .at("streamManagement")
          .at("maxStrangerReplies")
          .fail(`must be <= streamManagement.maxQueue (${v.streamManagement.maxQueue})`);
    },
  },
);

export type XmppConfig = ReturnType<typeof xmppConfigSchema.parse> extends infer T ? Exclude<T, symbol> : never;
