/**
 * The long-lived client session: composes transport, negotiation, stream management, keepalive,
 * IQ routing and disco into one object the rest of the agent uses. It owns the reconnect loop
 * and the state machine:
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
import { AgentError, describeError } from "../core/errors.js";
import { Backoff } from "../core/backoff.js";
import { type Logger, silentLogger } from "../core/log.js";
import { LogBudget } from "../core/log-budget.js";
import { realTimers, type TimerHandle, type Timers } from "../core/timers.js";
import type { XmppConfig } from "./config.js";
import { Connection, NS_CLIENT } from "./connection.js";
import { Disco, NS_CAPS, NS_DISCO_INFO, NS_DISCO_ITEMS } from "./disco.js";
import { InboundBudget, type InboundBudgetStats } from "./inbound-budget.js";
import { IqCaller, type IqHandler, IqRouter, iqErrorReply } from "./iq.js";
import { parseJid } from "./jid.js";
import { Keepalive } from "./keepalive.js";
import { AuthError, negotiate, type SmOutcome } from "./negotiate.js";
import { NS_PING, NS_VERSION, pingHandler, versionHandler } from "./ping-version.js";
import { SaltedPasswordCache } from "./sasl/index.js";
import { StanzaError } from "./stanza-error.js";
import { InboundCounter, isStanza, NS_SM, OutboundQueue, parseH, StreamManagementError } from "./stream-management.js";
import { SkippedElement } from "./xml-stream.js";
import {
  connectTcp,
  type Endpoint,
  parseHostPort,
  readCaFile,
  resolveEndpoints,
  startTls,
  type TlsOptions,
} from "./transport.js";

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
  /** Replies to strangers dropped because their share of the outbound queue was full. */
  strangerRepliesDropped: number;
  queued: number;
  unacked: number;
  smEnabled: boolean;
  /** SASL mechanism of the last login. */
  mechanism: string | undefined;
  lastError: string | undefined;
  onlineSince: number | undefined;
}

interface ResumeInfo {
  id: string;
  /** Seconds the server said it keeps the session after a drop (informational). */
  max: number;
  location: string | undefined;
}

/** Above this many bytes waiting in the socket, flushing pauses until 'drain'. */
const WRITE_HIGH_WATER = 128 * 1024;

export class XmppSession extends EventEmitter<SessionEvents> {
  private readonly cfg: XmppConfig;
  private readonly log: Logger;
  private readonly timers: Timers;
  private readonly queue: OutboundQueue;
  private readonly inbound = new InboundCounter();
  private readonly budget: InboundBudget;
  /** Log lines an outsider can cause (skips, drops) are rate-limited; totals are in stats(). */
  private readonly outsiderLog: LogBudget;
  private readonly iqCaller: IqCaller;
  private readonly router: IqRouter;
  readonly disco: Disco;
  private readonly backoff: Backoff;
  private readonly saltedCache = new SaltedPasswordCache();
  private readonly domain: string;
  private readonly local: string;
  private tls: TlsOptions | undefined;

  private _state: SessionState = "offline";
  private conn: Connection | undefined;
  private keepalive: Keepalive | undefined;
  private smActive = false;
  private resumeInfo: ResumeInfo | undefined;
  private boundJid: string | undefined;
  private ackRequested = false;
  private ackTimer: TimerHandle | undefined;
  private flushScheduled = false;
  /** A 'drain' listener is waiting on the socket (flushing paused at the high-water mark). */
  private awaitingDrain = false;
  private waitTimer: { handle: TimerHandle; wake: () => void } | undefined;
  /** retryNow() was called during an attempt: the wait after it is skipped. */
  private skipNextWait = false;
  private stopping = false;
  private loop: Promise<void> | undefined;
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

  constructor(private readonly options: SessionOptions) {
    super();
    this.password = options.password;
    this.cfg = options.config;
    this.log = (options.log ?? silentLogger).child({ component: "xmpp" });
    this.timers = options.timers ?? realTimers;
    const jid = parseJid(this.cfg.jid);
    if (!jid.local)
      throw new AgentError("config_invalid", `xmpp.jid ${this.cfg.jid} has no local part`, { path: "xmpp.jid" });
    this.domain = jid.domain;
    this.local = jid.local;
    this.queue = new OutboundQueue({
      maxQueue: this.cfg.streamManagement.maxQueue,
      maxStrangerEntries: this.cfg.streamManagement.maxStrangerReplies,
    });
    const self = () => ({ bare: this.boundJid ? parseJid(this.boundJid).bare : undefined, domain: this.domain });
    this.budget = new InboundBudget(this.cfg.inbound, {
      self,
      isOperator: (j) => options.isOperator?.(j) === true,
      timers: this.timers,
    });
    this.outsiderLog = new LogBudget(10, 60_000, this.timers);
    this.backoff = new Backoff(this.cfg.reconnect, options.random);
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
      queued: this.queue.length,
      unacked: this.queue.unackedCount,
      smEnabled: this.smActive,
      mechanism: this.mechanism,
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
  }

  /**
   * Ends the current reconnect wait now, or, called during a connection attempt (e.g. from a
   * `fault` listener that just changed the password), skips the wait after it. For callers that
   * know the next attempt has a better chance than the last (credential recovery). No effect
   * while online, offline before start(), or stopped.
   */
  retryNow(): void {
    if (this.stopping || !this.loop) return;
    if (this.waitTimer) this.waitTimer.wake();
    else if (this._state === "connecting" || this._state === "resuming") this.skipNextWait = true;
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run();
  }

  /** Closes the stream politely and stops reconnecting. Queued stanzas are rejected (`session_closed`). */
  async stop(): Promise<void> {
    if (this._state === "stopped") return;
    this.stopping = true;
    this.waitTimer?.wake();
    this.conn?.close();
    await this.loop;
    this.loop = undefined;
    const err = new AgentError("session_closed", "the XMPP session was stopped");
    this.queue.rejectAll(err);
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
   * the queue and is dropped (counted) when that share is full: a flood is answered only as far as
   * it costs nobody else.
   */
  private reply(iq: Element, request: Element): void {
    const stranger = this.budget.classify(request.attrs.from as string | undefined) === "stranger";
    this.enqueue(iq, { stranger }).catch((err: unknown) => {
      if (stranger && err instanceof AgentError && err.code === "send_queue_stranger_share_full") {
        this.counters.strangerRepliesDropped++;
        this.logOutsider("reply to a stranger dropped: its share of the outbound queue is full", {
          to: request.attrs.from,
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
    const p = this.queue.push(data, opts);
    this.scheduleFlush();
    return p;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this._state !== "online") return;
    this.flushScheduled = true;
    // Coalesce a burst of send() calls into one pass (and fewer TCP segments).
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const conn = this.conn;
    if (!conn || conn.isClosed || this._state !== "online") return;
    let wrote = 0;
    for (const entry of this.queue.unsent()) {
      if (conn.writableLength > WRITE_HIGH_WATER) {
        if (!this.awaitingDrain) {
          this.awaitingDrain = true;
          conn.rawSocket.once("drain", () => {
            this.awaitingDrain = false;
            this.scheduleFlush();
          });
        }
        break;
      }
      conn.writeRaw(entry.data);
      this.queue.markSent(entry);
      wrote++;
      // Ask for an ack every `ackEvery` stanzas so the queue drains during a long burst.
      if (this.smActive && this.queue.unackedCount >= this.cfg.streamManagement.ackEvery) this.requestAck();
    }
    if (wrote === 0) return;
    this.counters.stanzasOut += wrote;
    this.keepalive?.outbound();
    if (!this.smActive) this.queue.settleSentWithoutAcks();
    else this.armAckTimer();
  }

  /** Unacked stanzas get an ack request at the latest `ackDelayMs` after they were written. */
  private armAckTimer(): void {
    if (this.ackRequested || this.ackTimer || this.queue.unackedCount === 0) return;
    this.ackTimer = this.timers.setTimeout(() => {
      this.ackTimer = undefined;
      if (this.queue.unackedCount > 0) this.requestAck();
    }, this.cfg.streamManagement.ackDelayMs);
  }

  private requestAck(): void {
    if (!this.conn || !this.smActive || this.ackRequested) return;
    this.ackRequested = true;
    this.ackTimer?.cancel();
    this.ackTimer = undefined;
    this.conn.send(new Element("r", { xmlns: NS_SM }));
    this.keepalive?.expectAnswer();
  }

  private setState(next: SessionState): void {
    const prev = this._state;
    if (prev === next) return;
    this._state = next;
    this.log.info("state", { from: prev, to: next });
    this.emit("state", next, prev);
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let wasOnline = false;
      let failure: AgentError | undefined;
      try {
        wasOnline = await this.connectOnce();
      } catch (err) {
        failure =
          err instanceof AgentError
            ? err
            : new AgentError("connect_failed", (err as Error).message, {}, { cause: err });
      }
      if (this.stopping) break;
      let delay: number;
      if (failure) {
        this.lastError = `${failure.code}: ${failure.message}`;
        const persistent = failure instanceof AuthError || PERSISTENT_FAILURES.has(failure.code);
        // A refused password or certificate will not fix itself in a second: wait long, and say so loudly.
        delay = persistent ? this.cfg.reconnect.authFailureDelayMs : this.backoff.next();
        this.log[persistent ? "error" : "warn"]("connection attempt failed", {
          error: describeError(failure),
          retryInMs: delay,
        });
        if (persistent) this.emit("fault", failure);
      } else {
        if (wasOnline) {
          this.backoff.reset();
          // A retryNow() aimed at an attempt that then succeeded is spent.
          this.skipNextWait = false;
        }
        delay = this.backoff.next();
        this.log.info("reconnecting", { retryInMs: delay });
      }
      this.setState("waiting");
      await this.sleep(delay);
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.skipNextWait) {
      this.skipNextWait = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const wake = () => {
        this.waitTimer?.handle.cancel();
        this.waitTimer = undefined;
        resolve();
      };
      this.waitTimer = { handle: this.timers.setTimeout(wake, ms), wake };
    });
  }

  /**
   * Resumption is tried even past the server's `max`: the price is one round trip, and a
   * server that still remembers the old session answers <failed h='N'/>, which tells us
   * exactly which stanzas it received, so none is sent twice.
   */
  private canResume(): boolean {
    return this.resumeInfo !== undefined;
  }

  /** One connection from TCP connect to close. Resolves true if it got online. */
  private async connectOnce(): Promise<boolean> {
    const resuming = this.canResume();
    this.setState(resuming ? "resuming" : "connecting");
    this.counters.connects++;
    this.tls ??= {
      servername: this.cfg.tlsServername ?? this.domain,
      ...(this.cfg.caFile ? { ca: readCaFile(this.cfg.caFile), caSource: `xmpp.caFile ${this.cfg.caFile}` } : {}),
      ...(this.cfg.pinSha256 ? { pinSha256: this.cfg.pinSha256 } : {}),
    };
    const conn = await this.openConnection(resuming ? this.resumeInfo?.location : undefined);
    this.conn = conn;
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
        ...(resuming && this.resumeInfo ? { resume: { id: this.resumeInfo.id, h: this.inbound.value } } : {}),
        log: this.log,
      });
    } catch (err) {
      conn.destroy(err instanceof AgentError ? err : new AgentError("negotiation_failed", String(err)));
      this.conn = undefined;
      throw err;
    }

    const resumed = result.sm.kind === "resumed";
    try {
      this.applySmOutcome(result.sm, result.resumeFailed);
    } catch (err) {
      conn.sendStreamError("undefined-condition", (err as Error).message);
      conn.destroy(err as AgentError);
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
    conn.setHandler((el) => this.onElement(el));
    for (const el of result.early) this.dispatchStanza(el);

    if (!resumed && this.options.presence !== false) {
      // Settles on the server's ack; it can only be rejected by stop(), which needs no report.
      this.queue.pushFront(this.presenceStanza().toString()).catch(() => undefined);
    }
    this.onlineSince = this.timers.now();
    this.setState("online");
    this.log.info("online", { jid: this.boundJid, resumed, mechanism: result.mechanism, sm: result.sm.kind });
    this.emit("online", { resumed, jid: this.boundJid ?? "" });
    this.flush();

    const error = await closed;
    conn.off("activity", onActivity);
    this.keepalive.stop();
    this.keepalive = undefined;
    this.ackTimer?.cancel();
    this.ackTimer = undefined;
    this.ackRequested = false;
    this.awaitingDrain = false;
    this.conn = undefined;
    this.onlineSince = undefined;
    this.counters.disconnects++;
    // Sent-but-unacked entries keep their marks until the next stream says what the server
    // received (<resumed h/> or <failed h/>); only then are the rest re-sent (applySmOutcome).
    if (this.smActive) {
      if (error && error.code === "stanza_over_ceiling" && isStanza({ name: String(error.context.element) })) {
        // Count the rejected stanza as handled, so that the resumed stream does not deliver the
        // same poison again and again (the server re-sends what we did not acknowledge).
        this.inbound.increment();
        this.log.warn("dropped an inbound stanza too large even to skip", {
          code: error.code,
          element: error.context.element,
        });
      }
    }
    const reason = error ? `${error.code}: ${error.message}` : "closed";
    if (error && error.code !== "closed_locally") this.lastError = reason;
    // A stop asked for is routine (info); a link that went away is worth a warning.
    this.log[this.stopping ? "info" : "warn"]("offline", { reason, queued: this.queue.length });
    this.setState(this.stopping ? "stopped" : "offline");
    this.emit("offline", { reason, ...(error ? { error } : {}) });
    return true;
  }

  private async openConnection(location: string | undefined): Promise<Connection> {
    let endpoints: Endpoint[];
    if (location) {
      // XEP-0198 §5: the server may name where to resume; the certificate is still checked.
      endpoints = [/:\d+$/.test(location) ? parseHostPort(location) : { host: location, port: 5222 }];
    } else {
      endpoints = await resolveEndpoints(this.domain, this.cfg.directTls, this.cfg.server);
    }
    let lastErr: unknown;
    for (const ep of endpoints) {
      try {
        const tcp = await connectTcp(ep, this.cfg.timeouts.connectMs);
        const socket = this.cfg.directTls ? await startTls(tcp, this.tls!, this.cfg.timeouts.negotiationMs) : tcp;
        return new Connection(socket, this.domain, this.cfg.limits);
      } catch (err) {
        lastErr = err;
        this.log.debug("endpoint failed", { host: ep.host, port: ep.port, error: err });
      }
    }
    throw lastErr;
  }

  private applySmOutcome(sm: SmOutcome, resumeFailed: { h: number | undefined } | undefined): void {
    if (sm.kind === "resumed") {
      this.queue.ack(sm.h);
      // "the client MUST ... re-send any stanzas that the server did not acknowledge" (XEP-0198 §5)
      this.queue.requeueUnacked();
      this.smActive = true;
      return;
    }
    if (resumeFailed?.h !== undefined) {
      // XEP-0198 §5: <failed h='N'/> tells what the old session received: those are not re-sent.
      this.queue.ack(resumeFailed.h);
    }
    this.queue.resetCounters();
    this.inbound.reset();
    if (sm.kind === "enabled") {
      this.smActive = true;
      const max = Math.min(
        sm.max ?? this.cfg.streamManagement.resumeMaxSeconds,
        this.cfg.streamManagement.resumeMaxSeconds,
      );
      this.resumeInfo = sm.resume && sm.id ? { id: sm.id, max, location: sm.location } : undefined;
    } else {
      this.smActive = false;
      this.resumeInfo = undefined;
      this.log.warn("stream management unavailable: delivery is best effort", { reason: sm.reason });
    }
  }

  private probe(): void {
    if (!this.conn) return;
    if (this.smActive) {
      this.ackRequested = false;
      this.requestAck();
      return;
    }
    const ping = new Element("iq", { type: "get", to: this.domain, id: this.iqCaller.nextId() });
    ping.c("ping", { xmlns: NS_PING });
    this.iqCaller.track(ping, this.cfg.keepalive.timeoutMs).catch(() => undefined);
    this.conn.send(ping);
  }

  private onElement(el: Element): void {
    if (isStanza(el)) {
      if (this.smActive) this.inbound.increment();
      this.counters.stanzasIn++;
      this.dispatchStanza(el);
      return;
    }
    if (el.attrs.xmlns === NS_SM) {
      if (el.name === "r") {
        this.conn?.send(new Element("a", { xmlns: NS_SM, h: String(this.inbound.value) }));
        return;
      }
      if (el.name === "a") {
        // The server's <a/> is a lone small segment that we would not answer, so our kernel
        // delays its TCP ACK (~40 ms), and a server with Nagle on (Prosody's default) holds its
        // next write, e.g. an operator's command, until then. One whitespace byte (allowed between
        // stanzas, RFC 6120 §4.6.1) carries the ACK at once. Measured: bench/commands.ts.
        this.conn?.writeRaw(" ");
        const h = parseH(el.attrs.h);
        this.ackRequested = false;
        if (h === undefined) {
          this.protocolError(
            new StreamManagementError("sm_bad_h", "server sent <a/> without a valid h", { h: el.attrs.h }),
          );
          return;
        }
        try {
          this.queue.ack(h);
        } catch (err) {
          this.protocolError(err as AgentError);
          return;
        }
        // Mid-burst, stanzas written after our <r/> are still open: ask again right away rather
        // than leave them to the timer (otherwise a burst stalls for ackDelayMs per round).
        if (this.queue.unackedCount >= this.cfg.streamManagement.ackEvery) this.requestAck();
        else this.armAckTimer();
        return;
      }
    }
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

  private protocolError(err: AgentError): void {
    this.log.error("protocol violation by server", { error: err });
    const conn = this.conn;
    if (!conn) return;
    const e = new Element("stream:error");
    e.c("undefined-condition", { xmlns: "urn:ietf:params:xml:ns:xmpp-streams" });
    e.c("handled-count-too-high", {
      xmlns: NS_SM,
      h: String(err.context.h ?? ""),
      "send-count": String(err.context.sent ?? ""),
    });
    conn.writeRaw(e.toString());
    conn.destroy(err);
  }

  private dispatchStanza(el: Element): void {
    if (el instanceof SkippedElement) {
      this.onSkipped(el);
      return;
    }
    const admission = this.budget.admit(el.attrs.from as string | undefined);
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

function isRequest(el: Element): boolean {
  return el.name === "iq" && (el.attrs.type === "get" || el.attrs.type === "set");
}

/** Failures that need a person (credentials, certificates, server policy), not a quick retry. */
const PERSISTENT_FAILURES = new Set([
  "auth_failed",
  "tls_cert_rejected",
  "tls_pin_mismatch",
  "tls_unavailable",
  "tls_refused",
  "sasl_no_mechanism",
  "sasl_plain_refused",
  "sasl_server_signature",
  "tls_ca_unreadable",
]);
