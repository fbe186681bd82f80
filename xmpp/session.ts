/**
 * The long-lived client session: the state machine that composes the connection, negotiation,
 * stream management (stream-management.ts), keepalive, IQ routing and disco into one object the
 * rest of the agent uses. The reconnect loop (reconnect.ts) drives it, one connection at a time:
 *
 *   offline --start()--> connecting --negotiated--> online --link lost--> waiting --> connecting
 *                            |  (resuming when a previous SM session can be resumed)      ^
 *                            +------------------- failure -----------------------------------+
 *   any --stop()--> stopped
 *
 * `online` is emitted only when the stream is fully usable: bound and SM enabled (or resumed),
 * so nothing sent after `online` goes out untracked. Everything handed to send()/request() goes
 * through the SM queue: sent now when online, later when not, re-sent after resumption.
 */
import { EventEmitter } from "node:events";
import { Element } from "ltx";
import { AgentError, describeError } from "../kernel/errors.js";
import { type Logger, silentLogger } from "../kernel/log.js";
import { LogBudget } from "../kernel/log-budget.js";
import { realTimers, type Timers } from "../kernel/timers.js";
import type { XmppConfig } from "./config.js";
import { type ConnectFn, connectToServer } from "./connect.js";
import { type Connection, NS_CLIENT } from "./connection.js";
import { Disco, NS_CAPS, NS_DISCO_INFO, NS_DISCO_ITEMS } from "./disco.js";
import type { WeightedEndpoint } from "./endpoints.js";
import { InboundBudget, type InboundBudgetStats } from "./inbound-budget.js";
import { IqCaller, type IqHandler, IqRouter, iqErrorReply } from "./iq.js";
import { parseJid } from "./jid.js";
import { Keepalive } from "./keepalive.js";
import { negotiate } from "./negotiate.js";
import { NS_PING, NS_VERSION, pingHandler, versionHandler } from "./ping-version.js";
import { ReconnectLoop } from "./reconnect.js";
import { SaltedPasswordCache } from "./sasl/index.js";
import { StanzaError } from "./stanza-error.js";
import { isStanza, StreamManagement } from "./stream-management.js";
import { type FastTokenStore, FileFastTokenStore, MemoryFastTokenStore } from "./fast-token.js";
import { parseHostPort, readCaFile, readPemFile, type TlsOptions } from "./transport.js";
import { SkippedElement } from "./xml-stream.js";

export type { ConnectFn, ConnectTarget } from "./connect.js";

export type SessionState = "offline" | "connecting" | "resuming" | "online" | "waiting" | "stopped";

export interface SessionEvents {
  state: [state: SessionState, previous: SessionState];
  online: [info: { resumed: boolean; jid: string }];
  offline: [info: { reason: string; error?: AgentError }];
  /** Inbound message and presence stanzas. */
  stanza: [el: Element];
  /**
   * A failure that needs a person (password refused, untrusted certificate); the session keeps
   * retrying, slowly. Not named "error" so that an absent listener never crashes the agent.
   */
  fault: [err: AgentError];
  /**
   * Every refused login (auth_failed), the first xmpp.reconnect.authFailureRetries of a run too,
   * which are retried soon and are not yet a fault: for whoever can try another password.
   */
  refused: [err: AgentError];
}

export interface SessionOptions {
  config: XmppConfig;
  password: string;
  log?: Logger;
  timers?: Timers;
  /** For XEP-0092 and caps. */
  software?: { name: string; version: string };
  /** Whether a requester is an operator: with xmpp.softwareVersionTo "operators", only they get XEP-0092. */
  isOperator?: (jid: string) => boolean;
  /** Send initial presence (with XEP-0115 caps) on each new session. Default true. */
  presence?: boolean;
  /** Extra children for the initial presence (status, priority). */
  presenceChildren?: () => Element[];
  random?: () => number;
  /**
   * Where XEP-0484 FAST tokens and the SASL2 client id live. Default: xmpp.sasl2.tokenFile when
   * set, else memory (tokens then help reconnects of this process only).
   */
  fastTokens?: FastTokenStore;
  /**
   * Opens a connection to the server. Default: the configured endpoint or DNS SRV, TCP, Direct TLS
   * when configured (connect.ts). Tests pass xmpp/testing's in-memory connections.
   */
  connect?: ConnectFn;
}

export interface SessionStats {
  state: SessionState;
  jid: string | undefined;
  connects: number;
  resumes: number;
  resumeFailures: number;
  disconnects: number;
  stanzasIn: number;
  stanzasOut: number;
  /** Inbound stanzas over a limit (size, depth, attributes), skipped whole. */
  stanzasSkipped: number;
  /** Inbound stanzas over their sender's budget, dropped; with the worst sender. */
  inbound: InboundBudgetStats;
  /** Replies to strangers dropped because the outbound queue, or the strangers' share of it, was full. */
  strangerRepliesDropped: number;
  queued: number;
  unacked: number;
  smEnabled: boolean;
  /** SASL mechanism of the last login. */
  mechanism: string | undefined;
  /** host:port of the server endpoint the current (or last) connection reached: which node of a cluster. */
  endpoint: string | undefined;
  lastError: string | undefined;
  onlineSince: number | undefined;
}

export class XmppSession extends EventEmitter<SessionEvents> {
  private readonly cfg: XmppConfig;
  private readonly log: Logger;
  private readonly timers: Timers;
  private readonly sm: StreamManagement;
  private readonly reconnect: ReconnectLoop;
  private readonly connect: ConnectFn;
  private readonly budget: InboundBudget;
  /** Log lines an outsider can cause (skips, drops) are rate-limited; totals are in stats(). */
  private readonly outsiderLog: LogBudget;
  private readonly iqCaller: IqCaller;
  private readonly router: IqRouter;
  readonly disco: Disco;
  private readonly saltedCache = new SaltedPasswordCache();
  private readonly domain: string;
  private readonly local: string;
  private tls: TlsOptions | undefined;
  /** xmpp.server or xmpp.servers as endpoints; empty: DNS. */
  private readonly servers: readonly WeightedEndpoint[];
  /** The endpoint of the last connection, tried first for a resumption. */
  private lastRemote: { host: string; port: number } | undefined;
  private readonly random: () => number;

  private _state: SessionState = "offline";
  private conn: Connection | undefined;
  private keepalive: Keepalive | undefined;
  private boundJid: string | undefined;
  private readonly counters = {
    connects: 0,
    resumes: 0,
    resumeFailures: 0,
    disconnects: 0,
    stanzasIn: 0,
    stanzasOut: 0,
    stanzasSkipped: 0,
    strangerRepliesDropped: 0,
  };
  private lastError: string | undefined;
  private mechanism: string | undefined;
  private onlineSince: number | undefined;
  private password: string;
  private readonly fastTokens: FastTokenStore;

  constructor(private readonly options: SessionOptions) {
    super();
    this.password = options.password;
    this.cfg = options.config;
    this.log = (options.log ?? silentLogger).child({ component: "xmpp" });
    this.fastTokens =
      options.fastTokens ??
      (this.cfg.sasl2.tokenFile
        ? new FileFastTokenStore(this.cfg.sasl2.tokenFile, this.log)
        : new MemoryFastTokenStore());
    this.timers = options.timers ?? realTimers;
    this.connect = options.connect ?? connectToServer;
    const jid = parseJid(this.cfg.jid);
    if (!jid.local)
      throw new AgentError("config_invalid", `xmpp.jid ${this.cfg.jid} has no local part`, { path: "xmpp.jid" });
    this.domain = jid.domain;
    this.local = jid.local;
    this.servers =
      this.cfg.servers ?? (this.cfg.server ? [{ ...parseHostPort(this.cfg.server), priority: 0, weight: 1 }] : []);
    // Not options.random: that one is the reconnect jitter, which a storm benchmark turns off while
    // the fleet must still spread over a cluster's nodes.
    this.random = Math.random;
    this.sm = new StreamManagement(this.cfg.streamManagement, {
      timers: this.timers,
      log: this.log,
      hooks: {
        expectAnswer: () => this.keepalive?.expectAnswer(),
        wrote: (count) => {
          this.counters.stanzasOut += count;
          this.keepalive?.outbound();
        },
      },
    });
    const self = () => ({ bare: this.boundJid ? parseJid(this.boundJid).bare : undefined, domain: this.domain });
    this.budget = new InboundBudget(this.cfg.inbound, {
      self,
      isOperator: (j) => options.isOperator?.(j) === true,
      timers: this.timers,
    });
    this.outsiderLog = new LogBudget(10, 60_000, this.timers);
    this.reconnect = new ReconnectLoop({
      config: this.cfg.reconnect,
      timers: this.timers,
      log: this.log,
      ...(options.random ? { random: options.random } : {}),
      attempt: () => this.connectOnce(),
      failed: (err, persistent) => {
        this.lastError = `${err.code}: ${err.message}`;
        if (err.code === "auth_failed") this.emit("refused", err);
        if (persistent) this.emit("fault", err);
      },
      waiting: () => this.setState("waiting"),
    });
    this.iqCaller = new IqCaller({
      timers: this.timers,
      maxPending: this.cfg.limits.maxPendingIq,
      defaultTimeoutMs: this.cfg.timeouts.iqMs,
      self,
    });
    this.router = new IqRouter({
      log: this.log,
      maxConcurrent: this.cfg.limits.maxPendingIq,
      send: (iq, request) => this.reply(iq, request),
    });
    this.disco = new Disco({
      category: "client",
      type: this.cfg.identityType,
      name: options.software?.name ?? "xmpp-iot-agent",
    });
    const software = options.software ?? { name: "xmpp-iot-agent", version: "0.0.0" };
    this.disco.addFeature(NS_PING, NS_VERSION, NS_CAPS);
    const versionTo = this.cfg.softwareVersionTo;
    const mayKnowSoftware = (iq: Element) =>
      versionTo === "everyone" ||
      (versionTo === "operators" && options.isOperator?.(String(iq.attrs.from ?? "")) === true);
    this.handleIq("get", "query", NS_DISCO_INFO, (iq) =>
      this.disco.handleInfo(iq, { anonymous: !mayKnowSoftware(iq) }),
    );
    this.handleIq("get", "query", NS_DISCO_ITEMS, (iq) => this.disco.handleItems(iq));
    this.handleIq("get", "ping", NS_PING, pingHandler());
    const version = versionHandler(software.name, software.version, false);
    this.handleIq("get", "query", NS_VERSION, (iq) => {
      // The same answer as for a feature we do not have: a stranger learns nothing.
      if (!mayKnowSoftware(iq)) throw new StanzaError("service-unavailable", "cancel");
      return version();
    });
  }

  get state(): SessionState {
    return this._state;
  }

  get online(): boolean {
    return this._state === "online";
  }

  /** Bound full JID (valid once online). */
  get jid(): string | undefined {
    return this.boundJid;
  }

  stats(): SessionStats {
    return {
      state: this._state,
      jid: this.boundJid,
      ...this.counters,
      inbound: this.budget.stats(),
      queued: this.sm.queue.length,
      unacked: this.sm.queue.unackedCount,
      smEnabled: this.sm.active,
      mechanism: this.mechanism,
      // host:port as written in xmpp.servers: an IPv6 host in brackets.
      endpoint: this.lastRemote
        ? `${this.lastRemote.host.includes(":") ? `[${this.lastRemote.host}]` : this.lastRemote.host}:${this.lastRemote.port}`
        : undefined,
      lastError: this.lastError,
      onlineSince: this.onlineSince,
    };
  }

  /**
   * Uses `password` from the next login on (credential rotation). A resumed stream needs no
   * login, so the running session is not disturbed.
   */
  setPassword(password: string): void {
    if (password.length === 0) throw new AgentError("bad_password", "password must not be empty");
    this.password = password;
    // A token issued under the old password would keep working on the server; the next full login
    // proves the new one and gets a new token.
    this.fastTokens.dropToken("password rotated");
  }

  /** Forgets the FAST token (revocation, or a suspicion): the next login uses the password. */
  dropFastToken(reason: string): void {
    this.fastTokens.dropToken(reason);
  }

  /**
   * Ends the current reconnect wait now, or, called during a connection attempt (e.g. from a
   * `fault` listener that just changed the password), skips the wait after it. For callers that
   * know the next attempt has a better chance than the last (credential recovery). No effect
   * while online, offline before start(), or stopped.
   */
  retryNow(): void {
    this.reconnect.retryNow(this._state === "connecting" || this._state === "resuming");
  }

  start(): void {
    this.reconnect.start();
  }

  /** Closes the stream politely and stops reconnecting. Queued stanzas are rejected (`session_closed`). */
  async stop(): Promise<void> {
    if (this._state === "stopped") return;
    await this.reconnect.stop(() => this.conn?.close());
    const err = new AgentError("session_closed", "the XMPP session was stopped");
    this.sm.queue.rejectAll(err);
    this.iqCaller.rejectAll(err);
    this.setState("stopped");
  }

  /** Our presence: the owner's children (device status) and XEP-0115 caps. */
  private presenceStanza(): Element {
    const presence = new Element("presence");
    for (const c of this.options.presenceChildren?.() ?? []) presence.cnode(c);
    presence.cnode(this.disco.capsElement());
    return presence;
  }

  /**
   * Sends our presence again (the same stanza as at login, with fresh children), so subscribers
   * see a change of the device's state (e.g. telemetry blocked) without a reconnect. No-op offline:
   * the next login sends it anyway.
   */
  refreshPresence(): void {
    if (this.options.presence === false || this.state !== "online") return;
    this.send(this.presenceStanza()).catch((err: unknown) =>
      this.log.debug("presence update not sent", { error: describeError(err) }),
    );
  }

  /** Queues a message or presence; resolves when the server acknowledged it (XEP-0198). */
  send(stanza: Element): Promise<void> {
    if (stanza.name !== "message" && stanza.name !== "presence") {
      return Promise.reject(
        new AgentError("bad_stanza", `send() takes message or presence, not <${stanza.name}>; use request() for IQs`),
      );
    }
    return this.enqueue(stanza);
  }

  /** Sends an IQ get/set and resolves with its result; see IqCaller for errors. */
  request(iq: Element, opts: { timeoutMs?: number } = {}): Promise<Element> {
    if (iq.name !== "iq" || (iq.attrs.type !== "get" && iq.attrs.type !== "set")) {
      return Promise.reject(new AgentError("bad_stanza", "request() takes an <iq type='get|set'>"));
    }
    const answer = this.iqCaller.track(iq, opts.timeoutMs);
    this.enqueue(iq).catch((err: Error) => this.iqCaller.fail(String(iq.attrs.id), err));
    return answer;
  }

  handleIq(type: "get" | "set", name: string, xmlns: string, handler: IqHandler): () => void {
    return this.router.register(type, name, xmlns, handler);
  }

  /**
   * Sends an answer to an inbound request. A reply to a stranger goes into the strangers' share of
   * the queue and is dropped (counted) when that share, or the whole queue, is full: a flood is
   * answered only as far as it costs nobody else.
   */
  private reply(iq: Element, request: Element): void {
    const stranger = this.budget.classify(request.attrs.from as string | undefined) === "stranger";
    this.enqueue(iq, { stranger }).catch((err: unknown) => {
      // A reply stays queued until the server acknowledges it, and the server's <a/> comes only after
      // the requests it has already written to us: while we work through a backlog of a stranger's
      // requests, the queue fills with their replies, fullest at the last one. The whole queue is
      // checked before the strangers' share (and is the share when maxStrangerReplies = maxQueue), so
      // send_queue_full is the same drop and must be counted too: uncounted, a refused reply to the
      // last request of a flood went missing with no counter to show for it.
      const full = err instanceof AgentError && QUEUE_FULL.has(err.code);
      if (stranger && full) {
        this.counters.strangerRepliesDropped++;
        this.logOutsider("reply to a stranger dropped: the outbound queue or the strangers' share of it is full", {
          to: request.attrs.from,
          code: err.code,
        });
        return;
      }
      this.log.warn("IQ reply not sent", { to: request.attrs.from, error: describeError(err) });
    });
  }

  private logOutsider(message: string, fields: Record<string, unknown>): void {
    const t = this.outsiderLog.take();
    if (t.log) this.log.warn(message, t.suppressed > 0 ? { ...fields, suppressedBefore: t.suppressed } : fields);
  }

  private get stopping(): boolean {
    return this.reconnect.stopRequested;
  }

  private enqueue(stanza: Element, opts: { stranger?: boolean } = {}): Promise<void> {
    if (this._state === "stopped" || this.stopping) {
      return Promise.reject(new AgentError("session_closed", "the XMPP session is stopped"));
    }
    const data = stanza.toString();
    const bytes = Buffer.byteLength(data);
    if (bytes > this.cfg.limits.maxStanzaBytes) {
      return Promise.reject(
        new AgentError(
          "stanza_too_large",
          `outbound stanza of ${bytes} bytes exceeds ${this.cfg.limits.maxStanzaBytes}`,
          {
            bytes,
            limit: this.cfg.limits.maxStanzaBytes,
          },
        ),
      );
    }
    return this.sm.send(data, opts);
  }

  private setState(next: SessionState): void {
    const prev = this._state;
    if (prev === next) return;
    this._state = next;
    this.log.info("state", { from: prev, to: next });
    this.emit("state", next, prev);
  }

  /** One connection from TCP connect to close. Resolves true if it got online. */
  private async connectOnce(): Promise<boolean> {
    const resumption = this.sm.resumption;
    this.setState(resumption ? "resuming" : "connecting");
    this.counters.connects++;
    this.tls ??= {
      servername: this.cfg.tlsServername ?? this.domain,
      ...(this.cfg.caFile ? { ca: readCaFile(this.cfg.caFile), caSource: `xmpp.caFile ${this.cfg.caFile}` } : {}),
      ...(this.cfg.pinSha256 ? { pinSha256: this.cfg.pinSha256 } : {}),
      ...(this.cfg.clientCertFile && this.cfg.clientKeyFile
        ? {
            cert: readPemFile(this.cfg.clientCertFile, "xmpp.clientCertFile"),
            key: readPemFile(this.cfg.clientKeyFile, "xmpp.clientKeyFile"),
          }
        : {}),
    };
    const conn = await this.connect({
      domain: this.domain,
      location: resumption?.location,
      servers: this.servers,
      // Only the node that holds the session is sure to resume it (xmpp/endpoints.ts).
      preferred: resumption ? this.lastRemote : undefined,
      random: this.random,
      directTls: this.cfg.directTls,
      tls: this.tls,
      connectTimeoutMs: this.cfg.timeouts.connectMs,
      tlsTimeoutMs: this.cfg.timeouts.negotiationMs,
      limits: this.cfg.limits,
      timers: this.timers,
      log: this.log,
    });
    this.conn = conn;
    if (conn.remote) this.lastRemote = conn.remote;
    const closed = new Promise<AgentError | undefined>((resolve) => conn.once("close", resolve));
    if (this.stopping) {
      conn.close();
      return false;
    }
    let result: Awaited<ReturnType<typeof negotiate>>;
    try {
      result = await negotiate(conn, {
        username: this.local,
        password: this.password,
        jid: `${this.local}@${this.domain}`,
        clientCertificate: this.tls.cert !== undefined,
        ...(this.cfg.sasl2.enabled
          ? {
              sasl2: {
                fast: this.cfg.sasl2.fast,
                bind2: this.cfg.sasl2.bind2,
                tokens: this.fastTokens,
                software: this.options.software?.name ?? "xmpp-iot-agent",
              },
            }
          : {}),
        resource: parseJid(this.cfg.jid).resource ?? this.cfg.resource,
        tls: this.tls,
        directTls: this.cfg.directTls,
        allowPlain: this.cfg.allowPlain,
        saslMechanisms: this.cfg.saslMechanisms,
        saltedCache: this.saltedCache,
        stepTimeoutMs: this.cfg.timeouts.negotiationMs,
        sm: {
          enabled: this.cfg.streamManagement.enabled,
          resumeMaxSeconds: this.cfg.streamManagement.resumeMaxSeconds,
        },
        ...(resumption ? { resume: { id: resumption.id, h: resumption.h } } : {}),
        log: this.log,
      });
    } catch (err) {
      conn.destroy(err instanceof AgentError ? err : new AgentError("negotiation_failed", String(err)));
      this.conn = undefined;
      throw err;
    }

    const resumed = result.sm.kind === "resumed";
    try {
      this.sm.applyOutcome(conn, result.sm, result.resumeFailed);
    } catch (err) {
      this.conn = undefined;
      throw err;
    }
    if (!resumed) this.boundJid = result.jid;
    this.mechanism = result.mechanism;
    if (resumed) this.counters.resumes++;
    if (result.resumeFailed) this.counters.resumeFailures++;

    this.keepalive = new Keepalive(this.timers, this.cfg.keepalive, {
      probe: () => this.probe(),
      dead: (silentMs) =>
        conn.destroy(new AgentError("link_dead", `no answer from the server for ${silentMs} ms`, { silentMs })),
      whitespace: () => conn.writeRaw(" "),
    });
    const onActivity = () => this.keepalive?.activity();
    conn.on("activity", onActivity);
    this.keepalive.start();
    this.sm.attach(conn);
    conn.setHandler((el) => this.onElement(el));
    for (const el of result.early) this.dispatchStanza(el);

    if (!resumed && this.options.presence !== false) {
      // Settles on the server's ack; it can only be rejected by stop(), which needs no report.
      this.sm.queue.pushFront(this.presenceStanza().toString()).catch(() => undefined);
    }
    this.onlineSince = this.timers.now();
    this.setState("online");
    this.log.info("online", {
      jid: this.boundJid,
      resumed,
      mechanism: result.mechanism,
      sasl2: result.sasl2,
      sm: result.sm.kind,
    });
    this.emit("online", { resumed, jid: this.boundJid ?? "" });
    this.sm.flush();

    const error = await closed;
    conn.off("activity", onActivity);
    this.keepalive.stop();
    this.keepalive = undefined;
    this.sm.detach(error);
    this.conn = undefined;
    this.onlineSince = undefined;
    this.counters.disconnects++;
    const reason = error ? `${error.code}: ${error.message}` : "closed";
    if (error && error.code !== "closed_locally") this.lastError = reason;
    // A stop asked for is routine (info); a link that went away is worth a warning.
    this.log[this.stopping ? "info" : "warn"]("offline", { reason, queued: this.sm.queue.length });
    this.setState(this.stopping ? "stopped" : "offline");
    this.emit("offline", { reason, ...(error ? { error } : {}) });
    return true;
  }

  private probe(): void {
    if (!this.conn || this.sm.probe()) return;
    const ping = new Element("iq", { type: "get", to: this.domain, id: this.iqCaller.nextId() });
    ping.c("ping", { xmlns: NS_PING });
    this.iqCaller.track(ping, this.cfg.keepalive.timeoutMs).catch(() => undefined);
    this.conn.send(ping);
  }

  private onElement(el: Element): void {
    if (isStanza(el)) {
      this.sm.countInbound();
      this.counters.stanzasIn++;
      this.dispatchStanza(el);
      return;
    }
    if (this.sm.handleNonza(el)) return;
    if (el instanceof SkippedElement) {
      this.logOutsider("skipped an inbound element over the limits", { name: el.name, reason: el.reason.code });
      return;
    }
    this.log.debug("ignored nonza", { name: el.name, xmlns: el.attrs.xmlns });
  }

  /**
   * A stanza over a limit, skipped whole by the parser (already counted for stream management): an
   * IQ request is answered, within its sender's budget, so the sender is not left waiting.
   */
  private onSkipped(el: SkippedElement): void {
    this.counters.stanzasSkipped++;
    this.logOutsider("skipped an inbound stanza over the limits", {
      from: el.attrs.from,
      name: el.name,
      reason: el.reason.code,
      limit: el.reason.context.limit,
    });
    if (el.name === "iq" && (el.attrs.type === "result" || el.attrs.type === "error")) {
      this.iqCaller.failAnswer(el, el.reason);
      return;
    }
    if (!isRequest(el) || !this.budget.admit(el.attrs.from as string | undefined).admitted) return;
    const condition = el.reason.code === "stanza_too_large" ? "not-acceptable" : "policy-violation";
    this.reply(
      iqErrorReply(el, new StanzaError(condition, "modify", `${el.reason.message}: refused by the device`)),
      el,
    );
  }

  private dispatchStanza(el: Element): void {
    if (el instanceof SkippedElement) {
      this.onSkipped(el);
      return;
    }
    // An answer to our own request was asked for: it spends no budget. A fleet admin's session
    // running a command on 200 devices gets 400 answers from 200 "strangers"; dropping them would
    // time its own requests out. Each request is answered once, so a flood cannot ride on this.
    const solicited =
      el.name === "iq" && (el.attrs.type === "result" || el.attrs.type === "error") && this.iqCaller.awaits(el);
    const admission = solicited
      ? ({ admitted: true, cls: "stranger" } as const)
      : this.budget.admit(el.attrs.from as string | undefined);
    if (!admission.admitted) {
      this.logOutsider("inbound stanza over its sender's budget dropped", {
        from: admission.sender,
        class: admission.cls,
        name: el.name,
      });
      if (admission.answer && isRequest(el))
        this.reply(
          iqErrorReply(el, new StanzaError("resource-constraint", "wait", "too many stanzas from you; slow down")),
          el,
        );
      return;
    }
    if (el.name === "iq") {
      const type = el.attrs.type;
      if (type === "result" || type === "error") {
        if (!this.iqCaller.handleAnswer(el))
          this.log.debug("unmatched IQ answer", { id: el.attrs.id, from: el.attrs.from });
      } else if (type === "get" || type === "set") {
        this.router.dispatch(el);
      }
      return;
    }
    if (el.attrs.xmlns && el.attrs.xmlns !== NS_CLIENT) return;
    this.emit("stanza", el);
  }
}

/** The queue's refusals for want of room (stream-management.ts OutboundQueue.push). */
const QUEUE_FULL = new Set(["send_queue_full", "send_queue_stranger_share_full"]);

function isRequest(el: Element): boolean {
  return el.name === "iq" && (el.attrs.type === "get" || el.attrs.type === "set");
}
