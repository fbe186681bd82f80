/**
 * OperatorClient: typed wrapper around test/harness/slix_operator.py (not "operator.py": that name
 * would shadow Python's stdlib `operator` module, since the script's dir comes first on sys.path), a real slixmpp 1.8 client playing
 * the fleet operator (sends commands, subscribes to telemetry) against a real server.
 *
 * One OperatorClient = one python process = one XMPP account connection. Requests and responses are
 * JSON lines; every call has its own timeout. Unsolicited stanzas arrive as events, kept in order
 * (bounded) so tests can `waitFor` a predicate or `collect` what arrived so far.
 */
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { AgentError } from "../../kernel/errors.js";
import { HarnessError } from "./errors.js";
import { type PeerProcess, spawnPeer } from "./process.js";

const SCRIPT = fileURLToPath(new URL("./slix_operator.py", import.meta.url));
/** Debian's python3-slixmpp is importable only by the system interpreter. */
const PYTHON = "/usr/bin/python3";

export interface MessageEvent {
  event: "message";
  from: string;
  to: string;
  id: string | null;
  type: string;
  body: string | null;
  /** True when the message carries a XEP-0203 delay (e.g. offline storage). */
  delayed: boolean;
  xml: string;
}
export interface PresenceEvent {
  event: "presence";
  from: string;
  type: string;
  show: string | null;
  status: string | null;
  xml: string;
}
export interface PubsubEvent {
  event: "pubsub";
  /** "item" | "retract" | "delete" | "purge" | "configuration" | ... */
  kind: string;
  from: string;
  node: string | null;
  id: string | null;
  payload: string | null;
  xml: string;
}
export interface DisconnectedEvent {
  event: "disconnected";
  reason: string | null;
}
export interface OtherEvent {
  event: "ready" | "sm_enabled" | "session_resumed" | "fatal";
  [key: string]: unknown;
}
export type OperatorEvent = MessageEvent | PresenceEvent | PubsubEvent | DisconnectedEvent | OtherEvent;

export interface DataFormField {
  var: string | null;
  type: string | null;
  label: string | null;
  required: boolean;
  values: string[];
  options: { label: string | null; value: string }[];
}
export interface DataForm {
  type: string | null;
  title: string | null;
  instructions: string[];
  fields: DataFormField[];
  /** Multi-item results (`<reported/>` + `<item/>`): one map var -> values per item. */
  items: Record<string, string[]>[];
}
export interface CommandResponse {
  node: string | null;
  sessionid: string | null;
  /** "executing" | "completed" | "canceled" */
  status: string | null;
  actions: { execute: string | null; allowed: string[] } | null;
  notes: { type: string; text: string }[];
  form: DataForm | null;
  /** The whole response IQ. */
  xml: string;
}
export type FormValues = Record<string, string | number | boolean | string[]>;

export interface ConnectOptions {
  /** Bare JID, e.g. "operator@iot.test". */
  jid: string;
  password: string;
  host: string;
  port: number;
  /** Trust anchor PEM; without it slixmpp uses the system store (and test certs fail). */
  caFile?: string | null;
  resource?: string;
  /** "required" (default: abort if no STARTTLS), "optional", "none" (never STARTTLS). */
  tls?: "required" | "optional" | "none";
  /** Send initial presence after login. Default true. */
  initialPresence?: boolean;
  /** Enable XEP-0198 on the operator side. Default false. */
  streamManagement?: boolean;
  /** Presence subscription requests: null = manual (default), true = accept, false = reject. */
  autoAuthorize?: boolean | null;
  timeoutMs?: number;
}

/** A server handle as returned by startProsody/startEjabberd (only the parts login needs). */
export interface ServerAddress {
  host: string;
  port: number;
  domain: string;
  caFile: string | null;
}

/** The python side reported a failure; `kind` is stable ("iq-error", "auth", "tls", "timeout", ...). */
export class OperatorError extends AgentError {
  get kind(): string {
    return String(this.context.kind);
  }
  /** XMPP error condition for kind "iq-error" (e.g. "forbidden", "item-not-found"). */
  get condition(): string | undefined {
    return this.context.condition as string | undefined;
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  op: string;
}
interface Waiter {
  predicate: (e: OperatorEvent) => boolean;
  resolve: (e: OperatorEvent) => void;
  reject: (e: Error) => void;
}

export interface OperatorStartOptions {
  /** Name used in errors and the process marker. Default "operator". */
  name?: string;
  /** Hard lifetime of the python process. Default 900 s. */
  maxSeconds?: number;
  /** Max events kept for collect()/waitFor(). Default 10000 (oldest dropped). */
  maxEvents?: number;
  /** Default per-call timeout. Default 10 s. */
  callTimeoutMs?: number;
  /** Log slixmpp at DEBUG on stderr (kept in the error tail). */
  debug?: boolean;
}

export class OperatorClient {
  private readonly proc: PeerProcess;
  private readonly pending = new Map<number, Pending>();
  private readonly waiters = new Set<Waiter>();
  private readonly eventLog: OperatorEvent[] = [];
  private readonly maxEvents: number;
  private readonly callTimeoutMs: number;
  private nextId = 1;
  private closed = false;
  readonly name: string;
  /** Full JID bound by the last successful connect. */
  jid: string | null = null;

  private constructor(proc: PeerProcess, opts: OperatorStartOptions) {
    this.proc = proc;
    this.name = opts.name ?? "operator";
    this.maxEvents = opts.maxEvents ?? 10000;
    this.callTimeoutMs = opts.callTimeoutMs ?? 10000;
    const stdout = proc.child.stdout;
    if (!stdout) throw new HarnessError("harness.operator_spawn", "operator has no stdout pipe");
    // The PeerProcess also listens to stdout for its tail; JSON lines are parsed here.
    createInterface({ input: stdout }).on("line", (line) => this.onLine(line));
    proc.exited.then((exit) => {
      this.closed = true;
      const err = new HarnessError(
        "harness.operator_exited",
        `slixmpp operator "${this.name}" exited (${exit.code ?? exit.signal}); stderr tail:\n${proc.outputTail(30)}`,
        { exit },
      );
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.reject(err);
      }
      for (const w of this.waiters) {
        this.waiters.delete(w);
        w.reject(err);
      }
    });
  }

  /** Starts the python process and waits until it is ready for requests. */
  static async start(opts: OperatorStartOptions = {}): Promise<OperatorClient> {
    const proc = spawnPeer(PYTHON, ["-u", SCRIPT, "--max-seconds", String(opts.maxSeconds ?? 900)], {
      name: opts.name ?? "operator",
      stdinPipe: true,
      tailStdout: false,
      env: opts.debug ? { OPERATOR_DEBUG: "1" } : {},
    });
    const client = new OperatorClient(proc, opts);
    try {
      await client.waitFor((e) => e.event === "ready", 15000);
    } catch (err) {
      await client.stop();
      throw new HarnessError(
        "harness.operator_start_failed",
        `slixmpp operator did not start: ${(err as Error).message}\n${proc.outputTail(30)}`,
        {},
        { cause: err },
      );
    }
    return client;
  }

  /** start() + connect() to a harness server as `localpart@domain`. */
  static async login(
    server: ServerAddress,
    localpart: string,
    password: string,
    opts: Partial<ConnectOptions> & OperatorStartOptions = {},
  ): Promise<OperatorClient> {
    const client = await OperatorClient.start({ ...opts, name: opts.name ?? `operator:${localpart}` });
    try {
      await client.connect({
        ...opts,
        jid: `${localpart}@${server.domain}`,
        password,
        host: server.host,
        port: server.port,
        caFile: opts.caFile === undefined ? server.caFile : opts.caFile,
      });
    } catch (err) {
      await client.stop();
      throw err;
    }
    return client;
  }

  get pid(): number {
    return this.proc.pid;
  }

  private onLine(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      // Not protocol: something printed to stdout by a library. Keep it visible in the tail.
      return;
    }
    if (typeof msg.event === "string") {
      const ev = msg as unknown as OperatorEvent;
      this.eventLog.push(ev);
      if (this.eventLog.length > this.maxEvents) this.eventLog.shift();
      for (const w of this.waiters) {
        if (w.predicate(ev)) {
          this.waiters.delete(w);
          w.resolve(ev);
        }
      }
      return;
    }
    const id = msg.id as number;
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (msg.ok === true) {
      p.resolve(msg.result);
      return;
    }
    const e = (msg.error ?? {}) as Record<string, unknown>;
    const tb = typeof e.traceback === "string" ? `\n${e.traceback}` : "";
    p.reject(new OperatorError(`operator.${String(e.kind)}`, `${p.op}: ${String(e.message)}${tb}`, { ...e, op: p.op }));
  }

  /** Sends one request; rejects on python error, process exit or after timeoutMs. */
  call<T>(op: string, args: Record<string, unknown> = {}, timeoutMs = this.callTimeoutMs): Promise<T> {
    if (this.closed) {
      return Promise.reject(
        new HarnessError("harness.operator_closed", `operator "${this.name}" is not running`, { op }),
      );
    }
    const id = this.nextId++;
    // Python side gets a slightly shorter timeout so its precise error wins over our generic one.
    const pyTimeout = Math.max(0.5, (timeoutMs - 500) / 1000);
    const withTimeout = { ...args, ...(op === "ping" || "timeout" in args ? {} : timeoutArg(op, pyTimeout)) };
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new HarnessError(
            "harness.operator_timeout",
            `operator "${this.name}" ${op} timed out after ${timeoutMs} ms`,
            {
              op,
              stderr: this.proc.outputTail(10),
            },
          ),
        );
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, op });
      this.proc.child.stdin?.write(`${JSON.stringify({ id, op, args: withTimeout })}\n`);
    });
  }

  // ---------------------------------------------------------------- events

  /** Resolves with the first event (already received or future) matching predicate. */
  waitFor<E extends OperatorEvent = OperatorEvent>(
    predicate: (e: OperatorEvent) => boolean,
    timeoutMs = this.callTimeoutMs,
    what = "event",
  ): Promise<E> {
    const seen = this.eventLog.find(predicate);
    if (seen) return Promise.resolve(seen as E);
    if (this.closed) {
      return Promise.reject(
        new HarnessError("harness.operator_closed", `operator "${this.name}" is not running`, { what }),
      );
    }
    return new Promise<E>((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e as E);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new HarnessError(
            "harness.operator_wait_timeout",
            `operator "${this.name}" saw no matching ${what} in ${timeoutMs} ms`,
            {
              recent: this.eventLog.slice(-5).map((e) => e.event),
            },
          ),
        );
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  waitForMessage(predicate: (m: MessageEvent) => boolean = () => true, timeoutMs?: number): Promise<MessageEvent> {
    return this.waitFor<MessageEvent>((e) => e.event === "message" && predicate(e), timeoutMs, "message");
  }

  waitForPubsub(predicate: (p: PubsubEvent) => boolean = () => true, timeoutMs?: number): Promise<PubsubEvent> {
    return this.waitFor<PubsubEvent>((e) => e.event === "pubsub" && predicate(e), timeoutMs, "pubsub event");
  }

  /** Everything received so far (bounded by maxEvents). */
  collect(): OperatorEvent[] {
    return [...this.eventLog];
  }
  messages(): MessageEvent[] {
    return this.eventLog.filter((e): e is MessageEvent => e.event === "message");
  }
  pubsubItems(): PubsubEvent[] {
    return this.eventLog.filter((e): e is PubsubEvent => e.event === "pubsub" && e.kind === "item");
  }
  presences(): PresenceEvent[] {
    return this.eventLog.filter((e): e is PresenceEvent => e.event === "presence");
  }
  /** Forgets received events (e.g. between phases of a test). */
  clearEvents(): void {
    this.eventLog.length = 0;
  }

  // ---------------------------------------------------------------- connection

  async connect(opts: ConnectOptions): Promise<{ jid: string; tls: boolean }> {
    const timeoutMs = opts.timeoutMs ?? this.callTimeoutMs;
    const res = await this.call<{ jid: string; tls: boolean }>(
      "connect",
      {
        jid: opts.jid,
        password: opts.password,
        host: opts.host,
        port: opts.port,
        ca_certs: opts.caFile ?? null,
        resource: opts.resource ?? null,
        tls: opts.tls ?? "required",
        initial_presence: opts.initialPresence ?? true,
        stream_management: opts.streamManagement ?? false,
        auto_authorize: opts.autoAuthorize ?? null,
        timeout: Math.max(0.5, (timeoutMs - 500) / 1000),
      },
      timeoutMs,
    );
    this.jid = res.jid;
    return res;
  }

  /** Closes the stream politely. */
  disconnect(): Promise<{ wasConnected: boolean }> {
    return this.call("disconnect", { timeout: 5 }, 8000);
  }

  /** Drops TCP without </stream:stream> (the server sees a crashed client). */
  abort(): Promise<void> {
    return this.call("abort");
  }

  /** Ends the python process (closing stdin makes it disconnect and exit), then kills if needed. */
  async stop(): Promise<void> {
    if (!this.closed) {
      this.proc.child.stdin?.end();
      const t = setTimeout(() => void this.proc.stop(500), 3000);
      await this.proc.exited;
      clearTimeout(t);
    }
    await this.proc.stop(500);
    for (const w of this.waiters) this.waiters.delete(w);
  }

  // ---------------------------------------------------------------- stanzas

  sendMessage(
    to: string,
    body: string,
    opts: { id?: string; type?: string; payload?: string } = {},
  ): Promise<{ id: string }> {
    return this.call("send_message", {
      to,
      body,
      id: opts.id ?? null,
      type: opts.type ?? "chat",
      payload: opts.payload ?? null,
    });
  }
  sendPresence(opts: { to?: string; type?: string; show?: string; status?: string } = {}): Promise<void> {
    return this.call("send_presence", {
      to: opts.to ?? null,
      type: opts.type ?? null,
      show: opts.show ?? null,
      status: opts.status ?? null,
    });
  }
  subscribePresence(jid: string): Promise<void> {
    return this.call("roster_subscribe", { jid });
  }
  acceptSubscription(jid: string, subscribeBack = true): Promise<void> {
    return this.call("roster_accept", { jid, subscribe_back: subscribeBack });
  }
  roster(): Promise<{ jid: string; subscription: string; name: string | null }[]> {
    return this.call("get_roster");
  }
  sendRaw(xml: string): Promise<void> {
    return this.call("send_raw", { xml });
  }
  /** Sends `<iq type to>` with one raw child (which must carry its xmlns); returns the response IQ. */
  iq(to: string, type: "get" | "set", payloadXml: string, timeoutMs?: number): Promise<{ xml: string }> {
    return this.call("iq", { to, type, payload: payloadXml }, timeoutMs);
  }

  // ---------------------------------------------------------------- disco

  discoInfo(
    jid: string,
    node?: string,
  ): Promise<{
    identities: { category: string; type: string; name: string | null }[];
    features: string[];
    forms: DataForm[];
    xml: string;
  }> {
    return this.call("disco_info", { jid, node: node ?? null });
  }
  discoItems(
    jid: string,
    node?: string,
  ): Promise<{ items: { jid: string; node: string | null; name: string | null }[]; xml: string }> {
    return this.call("disco_items", { jid, node: node ?? null });
  }

  // ---------------------------------------------------------------- ad-hoc commands (XEP-0050)

  /** Commands advertised by `jid` (disco#items on the commands node). */
  async listCommands(jid: string): Promise<{ node: string; name: string | null; jid: string }[]> {
    const res = await this.discoItems(jid, "http://jabber.org/protocol/commands");
    return res.items.map((i) => ({ node: i.node ?? "", name: i.name, jid: i.jid }));
  }
  /** Sends one `<command/>`; an IQ error rejects with OperatorError (kind "iq-error", .condition). */
  command(
    jid: string,
    node: string,
    opts: {
      action?: "execute" | "next" | "prev" | "complete" | "cancel" | null;
      sessionid?: string;
      fields?: FormValues;
      timeoutMs?: number;
    } = {},
  ): Promise<CommandResponse> {
    return this.call(
      "command",
      {
        jid,
        node,
        action: opts.action === undefined ? "execute" : opts.action,
        sessionid: opts.sessionid ?? null,
        fields: opts.fields ?? null,
      },
      opts.timeoutMs,
    );
  }
  execute(jid: string, node: string, fields?: FormValues): Promise<CommandResponse> {
    return this.command(jid, node, { action: "execute", fields });
  }
  next(jid: string, node: string, sessionid: string, fields?: FormValues): Promise<CommandResponse> {
    return this.command(jid, node, { action: "next", sessionid, fields });
  }
  prev(jid: string, node: string, sessionid: string): Promise<CommandResponse> {
    return this.command(jid, node, { action: "prev", sessionid });
  }
  complete(jid: string, node: string, sessionid: string, fields?: FormValues): Promise<CommandResponse> {
    return this.command(jid, node, { action: "complete", sessionid, fields });
  }
  cancel(jid: string, node: string, sessionid: string): Promise<CommandResponse> {
    return this.command(jid, node, { action: "cancel", sessionid });
  }

  // ---------------------------------------------------------------- pubsub (XEP-0060)

  pubsubCreate(service: string, node: string, config?: FormValues): Promise<{ xml: string }> {
    return this.call("pubsub_create", { service, node, config: config ?? null });
  }
  pubsubDelete(service: string, node: string): Promise<{ xml: string }> {
    return this.call("pubsub_delete", { service, node });
  }
  publish(
    service: string,
    node: string,
    payloadXml: string,
    opts: { itemId?: string; publishOptions?: FormValues } = {},
  ): Promise<{ id: string | null; xml: string }> {
    return this.call("pubsub_publish", {
      service,
      node,
      payload: payloadXml,
      item_id: opts.itemId ?? null,
      publish_options: opts.publishOptions ?? null,
    });
  }
  subscribe(
    service: string,
    node: string,
    jid?: string,
  ): Promise<{ subscription: string | null; subid: string | null; xml: string }> {
    return this.call("pubsub_subscribe", { service, node, jid: jid ?? null });
  }
  unsubscribe(service: string, node: string, opts: { jid?: string; subid?: string } = {}): Promise<{ xml: string }> {
    return this.call("pubsub_unsubscribe", { service, node, jid: opts.jid ?? null, subid: opts.subid ?? null });
  }
  getItems(
    service: string,
    node: string,
    maxItems?: number,
  ): Promise<{ items: { id: string | null; payload: string | null }[]; xml: string }> {
    return this.call("pubsub_items", { service, node, max_items: maxItems ?? null });
  }
}

/** Ops that accept a python-side `timeout` argument (seconds). */
function timeoutArg(op: string, seconds: number): Record<string, number> {
  const withTimeout = new Set([
    "get_roster",
    "iq",
    "disco_info",
    "disco_items",
    "command",
    "pubsub_create",
    "pubsub_delete",
    "pubsub_publish",
    "pubsub_subscribe",
    "pubsub_unsubscribe",
    "pubsub_items",
  ]);
  return withTimeout.has(op) ? { timeout: seconds } : {};
}
