/**
 * Spool -> pubsub. Takes batches from the spool oldest first, publishes each as one item with a
 * stable id (r-<first>-<last>) and removes it from the spool only after the server's IQ result.
 *
 * - Nodes are created (with their configuration) on first use each run; <conflict/> means "exists".
 *   Either way, on a pubsub component the publisher then checks that the device owns the node
 *   (node-guard.ts): a node owned by another account is a security fault (PubsubError
 *   pubsub_node_not_owned, stats().squatted, an error log) and nothing is published into it; the
 *   readings stay spooled, never dead-lettered for it, and the check is re-run with backoff, so
 *   publishing resumes on its own once the squatter's node is gone. A node that existed is
 *   configured if its form shows other values than ours; its members are brought in step with the
 *   readers (whitelist). PEP nodes skip the owner check (nobody else can own them).
 * - A server that forbids creation or publishing gets a PubsubError (code pubsub_forbidden,
 *   context: node, service, operation, condition) on the "failure" event; the readings stay in the
 *   spool and the publisher retries with backoff (an admin may fix the ACL). A publish refused that
 *   way makes the next attempt check the node's owner again before anything is dead-lettered.
 * - At most `inFlight` publishes are outstanding (a bounded window: Prosody answers in order, so a
 *   small window hides the round trip without flooding the stream-management queue).
 * - Publishing pauses while the session is offline and resumes on "online". Requests in flight
 *   across a failed resumption either get their result or fail; failed ones are re-sent with the
 *   same item id, which overwrites rather than duplicates.
 * - After a failure nothing new is dispatched until the retry, so items reach the node in order
 *   except when a later batch was already in flight.
 * - A batch refused for good (forbidden, policy-violation, not-acceptable, ...: REFUSED_FOR_GOOD)
 *   `deadLetter.afterTries` times in a row, or for `deadLetter.afterMs`, is moved to the dead-letter
 *   file (dead-letter.ts) and publishing goes on with the batches behind it. Until then the
 *   publisher reports itself blocked (stats().blocked). Without a dead-letter sink it retries forever.
 * - Servers differ on publish-options (pubsub.ts): the first publish that is refused because of
 *   them (an unknown field, bad-request, not-acceptable, feature-not-implemented) switches this
 *   publisher to configuring its nodes once, from the form the server lists, and publishing
 *   without options. It is logged once and the refused batch is re-sent at once.
 */
import { EventEmitter } from "node:events";
import { Backoff, type BackoffOptions } from "../../kernel/backoff.js";
import { AgentError, describeError, isAgentError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { realTimers, type TimerHandle, type Timers } from "../../kernel/timers.js";
import { type DeviceStatus, encodeReadings, encodeStatus, itemIdFor } from "./codec.js";
import type { DeadLetterSink } from "./dead-letter.js";
import { PubsubError } from "./errors.js";
import { bareOf, NodeGuard, type OwnershipFault } from "./node-guard.js";
import {
  type AffiliationEntry,
  buildConfigure,
  buildConfigureRequest,
  buildCreate,
  buildDelete,
  buildPublish,
  configDiffers,
  configFormValues,
  listedConfigFields,
  type NodeConfig,
} from "./pubsub.js";
import type { SessionPort } from "./session-port.js";
import type { SpoolBatch, SpoolStore } from "./spool.js";

export interface PublisherOptions {
  session: SessionPort;
  spool: SpoolStore;
  deviceId: string;
  /** Pubsub service JID; undefined (or the device's own bare JID) means PEP. */
  service?: string;
  nodes: { telemetry: string; status: string };
  /** Configuration of the telemetry node (the status node keeps 1 item). */
  nodeConfig?: Partial<NodeConfig>;
  /** Accounts made members of both nodes unless the access model is open (operators, telemetry.publish.readers). */
  readers?: readonly string[];
  /** Accounts accepted as co-owners of the nodes besides the device itself. */
  trustedOwners?: readonly string[];
  /** Send publish-options with each publish (the server checks them, PEP applies them). */
  publishOptions?: boolean;
  /** Concurrent publishes. */
  inFlight?: number;
  /** Timeout of each pubsub request. */
  requestTimeoutMs?: number;
  retry?: BackoffOptions;
  /** Where batches refused for good go, and after how many refusals or how long. */
  deadLetter?: { sink: DeadLetterSink; afterTries: number; afterMs: number };
  timers?: Timers;
  logger?: Logger;
  random?: () => number;
}

export const PUBLISHER_DEFAULTS = {
  inFlight: 4,
  requestTimeoutMs: 30_000,
  publishOptions: true,
  nodeConfig: { persistItems: true, maxItems: 256, accessModel: "whitelist" } as NodeConfig,
  retry: { initialDelayMs: 1_000, maxDelayMs: 60_000, factor: 2 } as BackoffOptions,
};

export interface PublishedInfo {
  itemId: string;
  firstSeq: number;
  lastSeq: number;
  readings: number;
  historical: boolean;
}

export type PublisherState = "stopped" | "offline" | "idle" | "publishing" | "backoff";

export interface PublisherEvents {
  published: [info: PublishedInfo];
  /** A batch refused for good was moved to the dead-letter file. */
  deadLettered: [info: PublishedInfo & { condition: string | undefined }];
  /** Every failure, typed: PubsubError for refusals, AgentError (iq_timeout, session_closed, spool_*) otherwise. */
  failure: [err: AgentError];
  /** A node was found owned by another account (owned: false), or is the device's again (owned: true). */
  ownership: [info: { node: string; owned: boolean }];
}

/** A node the device found owned by another account: nothing is published there until a re-check passes. */
export interface SquattedNode {
  node: string;
  service: string;
  reason: OwnershipFault;
  /** The owners the server listed besides the device (empty when it refused the list). */
  owners: string[];
  /** The server's answer when it refused the owner list. */
  condition?: string;
  since: number;
  /** Checks that found it so. */
  checks: number;
}

export interface PublisherStats {
  state: PublisherState;
  service: string;
  nodes: { telemetry: string; status: string };
  inFlight: number;
  publishedItems: number;
  publishedReadings: number;
  failures: number;
  lastError?: { code: string; message: string; condition?: string; at: number };
  /** The oldest batch is being refused for good: what the server says, since when, how often. */
  blocked?: { condition: string; node: string; since: number; tries: number; deadLetterFull: boolean };
  /** Nodes owned by another account: a security fault, nothing is published there. */
  squatted?: SquattedNode[];
  /** Held in the dead-letter file (this run and earlier ones). */
  deadLettered: { batches: number; readings: number };
}

/** Refusals of the account's rights (typed pubsub_forbidden): an admin may fix the ACL. */
const REFUSALS = new Set([
  "forbidden",
  "not-authorized",
  "not-allowed",
  "registration-required",
  "subscription-required",
  "policy-violation",
]);

/** Refusals that retrying will not change: after the bound the batch becomes a dead letter. */
const REFUSED_FOR_GOOD = new Set([...REFUSALS, "not-acceptable", "bad-request"]);

/** Conditions a server may answer to publish-options it does not support (XEP-0060 7.1.5), besides the precondition <conflict/>. */
const PUBLISH_OPTIONS_REFUSALS = new Set(["bad-request", "not-acceptable", "feature-not-implemented"]);

/** Whether a refused publish (sent with options) was refused because of the options. */
export function refusesPublishOptions(err: unknown): boolean {
  if (!isAgentError(err, "iq_error")) return false;
  const condition = String(err.context.condition);
  const text = String(err.context.text ?? "");
  return PUBLISH_OPTIONS_REFUSALS.has(condition) || /publish-options|unknown field/i.test(text);
}

export class TelemetryPublisher extends EventEmitter<PublisherEvents> {
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly backoff: Backoff;
  private readonly window: number;
  private readonly timeoutMs: number;
  private readonly nodeConfig: NodeConfig;
  private readonly service: string | undefined;
  private readonly guard: NodeGuard;
  private usePublishOptions: boolean;

  private running = false;
  private pumping = false;
  private repump = false;
  private retryTimer: TimerHandle | undefined;
  private lastFailureRefusal = false;
  private readonly inflight = new Map<number, SpoolBatch>();
  private retryQueue: SpoolBatch[] = [];
  private highestDispatched = -1;
  private readonly readyNodes = new Set<string>();
  private readonly squatted = new Map<string, SquattedNode>();
  private readonly counters = { publishedItems: 0, publishedReadings: 0, failures: 0 };
  /** Refusals for good per batch id: how often and since when. */
  private readonly refusals = new Map<number, { tries: number; since: number }>();
  private blocked: PublisherStats["blocked"];
  private lastError: PublisherStats["lastError"];
  private readonly onOnline = () => {
    // A link that came back is worth trying at once; a refusal is not (it would not have changed).
    if (this.retryTimer && !this.lastFailureRefusal) {
      this.retryTimer.cancel();
      this.retryTimer = undefined;
    }
    this.notify();
  };

  constructor(private readonly options: PublisherOptions) {
    super();
    this.timers = options.timers ?? realTimers;
    this.logger = (options.logger ?? silentLogger).child({ component: "telemetry-publisher" });
    this.backoff = new Backoff(options.retry ?? PUBLISHER_DEFAULTS.retry, options.random);
    this.window = Math.max(1, options.inFlight ?? PUBLISHER_DEFAULTS.inFlight);
    this.timeoutMs = options.requestTimeoutMs ?? PUBLISHER_DEFAULTS.requestTimeoutMs;
    this.nodeConfig = { ...PUBLISHER_DEFAULTS.nodeConfig, ...options.nodeConfig };
    this.usePublishOptions = options.publishOptions ?? PUBLISHER_DEFAULTS.publishOptions;
    this.service = options.service || undefined;
    this.guard = new NodeGuard({
      session: options.session,
      timeoutMs: this.timeoutMs,
      readers: options.readers ?? [],
      trustedOwners: options.trustedOwners ?? [],
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.options.session.on("online", this.onOnline);
    this.notify();
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.options.session.off("online", this.onOnline);
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    // In-flight requests finish on their own; their results still ack the spool if it is open.
    this.retryQueue = [];
    this.highestDispatched = -1;
  }

  /** Call after appending to the spool: publishes whatever the window allows. */
  notify(): void {
    if (!this.running) return;
    if (this.pumping) {
      this.repump = true;
      return;
    }
    void this.pump();
  }

  stats(): PublisherStats {
    return {
      state: this.state,
      service: this.service ?? "(PEP)",
      nodes: this.options.nodes,
      inFlight: this.inflight.size,
      ...this.counters,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(this.blocked ? { blocked: this.blocked } : {}),
      ...(this.squatted.size > 0 ? { squatted: [...this.squatted.values()].map((s) => ({ ...s })) } : {}),
      deadLettered: this.options.deadLetter?.sink.counts() ?? { batches: 0, readings: 0 },
    };
  }

  get state(): PublisherState {
    if (!this.running) return "stopped";
    if (this.retryTimer) return "backoff";
    if (!this.options.session.online) return "offline";
    return this.inflight.size > 0 ? "publishing" : "idle";
  }

  /**
   * Publishes the status item (item id "current" on the status node, which keeps one item).
   * Rejects with PubsubError or the session's error; not spooled: the caller re-sends on the next online.
   */
  async publishStatus(status: DeviceStatus): Promise<void> {
    const node = this.options.nodes.status;
    const config: NodeConfig = { ...this.nodeConfig, maxItems: 1 };
    const publish = async () => {
      await this.ensureNode(node, config);
      await this.options.session.request(
        buildPublish(this.service, node, "current", encodeStatus(status), this.usePublishOptions ? config : undefined),
        { timeoutMs: this.timeoutMs },
      );
    };
    try {
      try {
        await publish();
      } catch (err) {
        if (!(this.usePublishOptions && refusesPublishOptions(err))) throw err;
        this.dropPublishOptions(node, err);
        await publish();
      }
    } catch (err) {
      if (this.refusesAccount(err)) this.readyNodes.delete(node);
      const e = this.classify(err, node, "publish");
      this.record(e);
      throw e;
    }
  }

  // ----------------------------------------------------------------

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      do {
        this.repump = false;
        if (!this.running || this.retryTimer || !this.options.session.online) return;
        const node = this.options.nodes.telemetry;
        await this.ensureNode(node, this.nodeConfig);
        while (this.running && !this.retryTimer && this.options.session.online) {
          const free = this.window - this.inflight.size;
          if (free <= 0) break;
          let batches: SpoolBatch[];
          if (this.retryQueue.length > 0) batches = this.retryQueue.splice(0, free);
          else batches = await this.options.spool.peek(free, this.highestDispatched);
          if (batches.length === 0) break;
          for (const b of batches) this.dispatch(node, b);
        }
      } while (this.repump);
    } catch (err) {
      const e = this.classify(err, this.options.nodes.telemetry, "create");
      this.fail(e);
    } finally {
      this.pumping = false;
    }
  }

  private dispatch(node: string, b: SpoolBatch): void {
    this.inflight.set(b.id, b);
    if (b.firstSeq > this.highestDispatched) this.highestDispatched = b.firstSeq;
    const itemId = itemIdFor(b);
    const withOptions = this.usePublishOptions;
    let iq: ReturnType<typeof buildPublish>;
    try {
      const payload = encodeReadings(b.readings, { device: this.options.deviceId });
      iq = buildPublish(this.service, node, itemId, payload, withOptions ? this.nodeConfig : undefined);
    } catch (err) {
      // Cannot happen for a batch the spool validated; if it does, keep it (retried, reported).
      this.onPublishFailed(node, b, err, false);
      return;
    }
    this.options.session.request(iq, { timeoutMs: this.timeoutMs }).then(
      () => this.onPublished(b, itemId),
      (err) => this.onPublishFailed(node, b, err, withOptions),
    );
  }

  private async onPublished(b: SpoolBatch, itemId: string): Promise<void> {
    try {
      await this.options.spool.ack({ ids: [b.id] });
    } catch (err) {
      // The item is on the server; if the spool cannot record that, it is re-sent later under the
      // same id (an overwrite), so this is logged, not fatal.
      this.logger.warn("published batch could not be removed from the spool", { itemId, error: describeError(err) });
    }
    this.inflight.delete(b.id);
    // Blocked means some batch is still being refused: a later batch going through does not end it.
    this.refusals.delete(b.id);
    if (this.refusals.size === 0) this.blocked = undefined;
    this.backoff.reset();
    this.counters.publishedItems++;
    this.counters.publishedReadings += b.readings.length;
    this.emit("published", {
      itemId,
      firstSeq: b.firstSeq,
      lastSeq: b.lastSeq,
      readings: b.readings.length,
      historical: b.historical,
    });
    this.notify();
  }

  private onPublishFailed(node: string, b: SpoolBatch, err: unknown, sentWithOptions: boolean): void {
    this.inflight.delete(b.id);
    if (!this.running) return;
    const optionsRefused = sentWithOptions && refusesPublishOptions(err);
    // A refusal of the options is not the data's: it never counts towards a dead letter.
    if (!optionsRefused && this.maybeDeadLetter(node, b, err)) return;
    // Re-send before anything newer, oldest first.
    this.retryQueue.push(b);
    this.retryQueue.sort((x, y) => x.id - y.id);
    if (optionsRefused) {
      // Configure the nodes once and re-send without options, at once (batches already in
      // flight with options come back here too and are simply re-queued).
      this.dropPublishOptions(node, err);
      this.notify();
      return;
    }
    const condition = isAgentError(err, "iq_error") ? (err.context.condition as string) : undefined;
    // Gone, or refused: the next attempt creates the node again or checks who owns it now.
    if (condition === "item-not-found" || this.refusesAccount(err)) this.readyNodes.delete(node);
    if (condition === "conflict" && this.usePublishOptions) {
      // precondition-not-met: try to make the node match; if that is refused, stop asking.
      void this.reconfigure(node);
    }
    this.fail(this.classify(err, node, "publish"));
  }

  /**
   * Counts a refusal for good of `b`; past the bound, moves it to the dead-letter file and lets
   * publishing go on. Returns true when the batch was taken out of the retry path.
   */
  private maybeDeadLetter(node: string, b: SpoolBatch, err: unknown): boolean {
    const dl = this.options.deadLetter;
    if (!isAgentError(err, "iq_error")) return false;
    const condition = String(err.context.condition);
    if (!REFUSED_FOR_GOOD.has(condition)) return false;
    const now = this.timers.now();
    const r = this.refusals.get(b.id) ?? { tries: 0, since: now };
    r.tries++;
    this.refusals.set(b.id, r);
    this.blocked = { condition, node, since: r.since, tries: r.tries, deadLetterFull: false };
    if (!dl || (r.tries < dl.afterTries && now - r.since < dl.afterMs)) return false;
    const e = this.classify(err, node, "publish");
    this.record(e);
    void this.moveToDeadLetters(node, b, e, condition, r).catch((moveErr: unknown) => {
      // The batch stays spooled: re-queue it and retry as for any failure.
      this.logger.error("could not move a batch to the dead-letter file; it stays spooled", {
        error: describeError(moveErr),
      });
      this.retryQueue.push(b);
      this.retryQueue.sort((x, y) => x.id - y.id);
      this.fail(e);
    });
    return true;
  }

  private async moveToDeadLetters(
    node: string,
    b: SpoolBatch,
    e: AgentError,
    condition: string,
    r: { tries: number; since: number },
  ): Promise<void> {
    const sink = this.options.deadLetter!.sink;
    const itemId = itemIdFor(b);
    // A refusal from a node someone else owns is not the data's fault: check before giving up on it.
    if (!(await this.stillOwned(node))) {
      this.retryQueue.push(b);
      this.retryQueue.sort((x, y) => x.id - y.id);
      return;
    }
    const stored = await sink.append({
      at: new Date(this.timers.now()).toISOString(),
      itemId,
      node,
      service: this.service ?? "(PEP)",
      firstSeq: b.firstSeq,
      lastSeq: b.lastSeq,
      error: { code: e.code, condition, message: e.message, tries: r.tries, since: new Date(r.since).toISOString() },
      readings: b.readings,
    });
    if (!stored) {
      // Full: never drop. The batch stays spooled and the publisher stays blocked, visibly.
      if (this.blocked) this.blocked.deadLetterFull = true;
      this.logger.error("dead-letter file is full; the refused batch stays spooled and publishing is blocked", {
        itemId,
        node,
      });
      this.retryQueue.push(b);
      this.retryQueue.sort((x, y) => x.id - y.id);
      this.fail(e);
      return;
    }
    await this.options.spool.ack({ ids: [b.id] });
    this.refusals.delete(b.id);
    if (this.refusals.size === 0) this.blocked = undefined;
    this.backoff.reset();
    this.logger.error("batch refused for good moved to the dead-letter file; publishing goes on", {
      itemId,
      node,
      condition,
      tries: r.tries,
      readings: b.readings.length,
    });
    this.emit("deadLettered", {
      itemId,
      firstSeq: b.firstSeq,
      lastSeq: b.lastSeq,
      readings: b.readings.length,
      historical: b.historical,
      condition,
    });
    this.notify();
  }

  /** Switches to publishing without options (logged once); nodes are configured again before the next publish. */
  private dropPublishOptions(node: string, err: unknown): void {
    if (!this.usePublishOptions) return;
    this.usePublishOptions = false;
    // Existing nodes are configured from the server's form on their next ensure.
    this.readyNodes.clear();
    this.logger.warn("the server refuses publish-options: configuring the nodes once and publishing without them", {
      service: this.service ?? "(PEP)",
      node,
      error: describeError(err),
    });
  }

  /** Configures an existing node with the fields its configuration form lists (XEP-0060 8.2). */
  private async configureNode(node: string, config: NodeConfig): Promise<void> {
    const form = await this.options.session.request(buildConfigureRequest(this.service, node), {
      timeoutMs: this.timeoutMs,
    });
    const listed = listedConfigFields(form);
    await this.options.session.request(buildConfigure(this.service, node, config, listed), {
      timeoutMs: this.timeoutMs,
    });
  }

  private async reconfigure(node: string): Promise<void> {
    try {
      await this.configureNode(node, this.nodeConfig);
      this.logger.info("pubsub node reconfigured to match publish-options", { node });
    } catch (err) {
      this.usePublishOptions = false;
      this.logger.warn("node config differs and may not be changed; publishing without publish-options", {
        node,
        error: describeError(err),
      });
    }
  }

  private fail(e: AgentError): void {
    this.record(e);
    if (!this.running || this.retryTimer) return;
    this.lastFailureRefusal =
      e instanceof PubsubError && (e.code === "pubsub_forbidden" || e.code === "pubsub_node_not_owned");
    const delay = this.backoff.next();
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = undefined;
      this.notify();
    }, delay);
  }

  private record(e: AgentError): void {
    this.counters.failures++;
    const condition = e.context.condition as string | undefined;
    this.lastError = { code: e.code, message: e.message, ...(condition ? { condition } : {}), at: this.timers.now() };
    const level = e instanceof PubsubError ? "error" : "warn";
    this.logger[level]("telemetry publish failed; readings stay spooled", { error: describeError(e) });
    this.emit("failure", e);
  }

  /**
   * Once per node per run (again after the node vanished, a refusal, or a switch away from
   * publish-options): create it, check that it is ours (components), configure it if it existed
   * with other values, and bring its readers in step. Rejects with PubsubError
   * pubsub_node_not_owned for a node another account owns (recorded in stats().squatted).
   */
  private async ensureNode(node: string, config: NodeConfig): Promise<void> {
    if (this.readyNodes.has(node)) return;
    const created = await this.createNode(node, config);
    const self = this.selfBare();
    let affiliations: AffiliationEntry[] | undefined;
    if (!this.isPep(self)) {
      try {
        affiliations = await this.guard.verifyOwner(this.service!, node, self);
      } catch (err) {
        if (isAgentError(err, "pubsub_node_not_owned")) this.markSquatted(err as PubsubError);
        throw err;
      }
      this.clearSquatted(node);
    }
    const wasModel = created ? undefined : await this.configureIfDiffers(node, config);
    if (config.accessModel !== "open") {
      const listed = await this.syncReaders(node, self, config, affiliations);
      if (listed === false && wasModel !== undefined && config.accessModel === "whitelist")
        await this.recreate(node, config, self, wasModel);
    }
    this.readyNodes.add(node);
  }

  /**
   * A node that was open (or presence) until now, on a server that will not list its subscribers
   * (ejabberd 23.01 PEP), would go on delivering to whoever subscribed meanwhile: ejabberd keeps
   * subscriptions across a change to whitelist. Deleting the node drops them all; its stored items
   * go with it (they were delivered; the spool no longer holds them).
   */
  private async recreate(node: string, config: NodeConfig, self: string, wasModel: string): Promise<void> {
    this.logger.warn(
      "the node's access model was changed but its subscribers cannot be listed: deleting and re-creating it so no earlier subscriber keeps reading (its stored items are dropped)",
      { service: this.service ?? "(PEP)", node, accessModel: config.accessModel, was: wasModel },
    );
    await this.options.session.request(buildDelete(this.service, node), { timeoutMs: this.timeoutMs });
    await this.options.session.request(buildCreate(this.service, node, config), { timeoutMs: this.timeoutMs });
    await this.syncReaders(node, self, config, undefined);
  }

  /** True when the node was created now, false when it existed (<conflict/>). */
  private async createNode(node: string, config: NodeConfig): Promise<boolean> {
    try {
      await this.options.session.request(buildCreate(this.service, node, config), { timeoutMs: this.timeoutMs });
      this.logger.info("pubsub node created", { service: this.service ?? "(PEP)", node });
      return true;
    } catch (err) {
      if (isAgentError(err, "iq_error") && err.context.condition === "conflict") return false;
      throw err;
    }
  }

  /**
   * A node that existed (an earlier run, an earlier default): configured when its form shows other
   * values. Resolves with the access model it had when this changed it, else undefined.
   */
  private async configureIfDiffers(node: string, config: NodeConfig): Promise<string | undefined> {
    try {
      const form = await this.options.session.request(buildConfigureRequest(this.service, node), {
        timeoutMs: this.timeoutMs,
      });
      const listed = configFormValues(form);
      const differs = configDiffers(listed, config);
      if (differs.length === 0) return undefined;
      await this.options.session.request(buildConfigure(this.service, node, config, new Set(listed.keys())), {
        timeoutMs: this.timeoutMs,
      });
      this.logger.info("pubsub node configured", { service: this.service ?? "(PEP)", node, fields: differs });
      return differs.includes("pubsub#access_model") ? listed.get("pubsub#access_model") : undefined;
    } catch (e) {
      this.logger.warn("pubsub node could not be configured; publishing into it as it is", {
        node,
        error: describeError(e),
      });
      return undefined;
    }
  }

  /** Resolves with whether the server listed the node's subscriptions (undefined when the sync failed). */
  private async syncReaders(
    node: string,
    self: string,
    config: NodeConfig,
    affiliations: AffiliationEntry[] | undefined,
  ): Promise<boolean | undefined> {
    try {
      const change = await this.guard.syncReaders(this.service, node, self, config.accessModel, affiliations);
      if (change.added.length + change.removed.length + change.unsubscribed.length > 0)
        this.logger.info("pubsub node readers brought in step", {
          service: this.service ?? "(PEP)",
          node,
          accessModel: config.accessModel,
          added: change.added,
          removed: change.removed,
          unsubscribed: change.unsubscribed,
        });
      return change.subscriptionsListed;
    } catch (err) {
      // Publishing goes on: the readings are on the node for whoever may read it once this succeeds
      // (the next run, or the next ensure); a reader added or removed is what did not happen.
      this.logger.error("the readers of a pubsub node could not be brought in step with the config", {
        service: this.service ?? "(PEP)",
        node,
        error: describeError(err),
      });
      return undefined;
    }
  }

  /** The device's bare JID (lower case); the session is online whenever this is asked. */
  private selfBare(): string {
    const jid = this.options.session.jid;
    if (!jid) throw new AgentError("session_closed", "the session has no bound JID", {});
    return bareOf(jid);
  }

  /** PEP: no service, or the device's own bare JID (nobody else can own nodes there). */
  private isPep(self: string): boolean {
    return this.service === undefined || bareOf(this.service) === self;
  }

  /** Refusals of the account's rights: on a component they may mean the node is no longer ours. */
  private refusesAccount(err: unknown): boolean {
    return isAgentError(err, "iq_error") && REFUSALS.has(String(err.context.condition));
  }

  /** Before a batch becomes a dead letter: false when the node turned out to be someone else's. */
  private async stillOwned(node: string): Promise<boolean> {
    const self = this.selfBare();
    if (this.isPep(self)) return true;
    try {
      await this.guard.verifyOwner(this.service!, node, self);
      this.clearSquatted(node);
      return true;
    } catch (err) {
      if (!isAgentError(err, "pubsub_node_not_owned")) throw err;
      this.markSquatted(err as PubsubError);
      this.readyNodes.delete(node);
      this.fail(err as PubsubError);
      return false;
    }
  }

  private markSquatted(e: PubsubError): void {
    const node = String(e.context.node);
    const prev = this.squatted.get(node);
    const condition = e.context.condition as string | undefined;
    const info: SquattedNode = {
      node,
      service: String(e.context.service),
      reason: e.context.reason as OwnershipFault,
      owners: (e.context.owners as string[] | undefined) ?? [],
      ...(condition ? { condition } : {}),
      since: prev?.since ?? this.timers.now(),
      checks: (prev?.checks ?? 0) + 1,
    };
    this.squatted.set(node, info);
    if (node === this.options.nodes.telemetry) {
      // Refusals counted against batches were the squatter's doing, not the data's: they never
      // count towards a dead letter.
      this.refusals.clear();
      this.blocked = undefined;
    }
    if (prev) return;
    this.logger.error("security fault: a pubsub node is owned by another account; nothing is published into it", {
      ...info,
      error: describeError(e),
    });
    this.emit("ownership", { node, owned: false });
  }

  private clearSquatted(node: string): void {
    const prev = this.squatted.get(node);
    if (!prev) return;
    this.squatted.delete(node);
    this.backoff.reset();
    this.logger.info("pubsub node is the device's again; publishing resumes", {
      node,
      service: prev.service,
      since: prev.since,
      checks: prev.checks,
    });
    this.emit("ownership", { node, owned: true });
  }

  /** Turns whatever a request threw into the error the owner sees. */
  private classify(err: unknown, node: string, operation: "create" | "publish"): AgentError {
    if (err instanceof PubsubError) return err;
    const service = this.service ?? "(PEP)";
    if (isAgentError(err, "iq_error")) {
      const condition = String(err.context.condition);
      const op = operation === "create" ? "create node" : "publish to";
      if (REFUSALS.has(condition))
        return new PubsubError(
          "pubsub_forbidden",
          `the server refused to ${op} ${node} on ${service}: ${condition}`,
          { node, service, operation, condition, ...(err.context.text ? { text: err.context.text } : {}) },
          { cause: err },
        );
      if (condition === "feature-not-implemented" || condition === "service-unavailable")
        return new PubsubError(
          "pubsub_unavailable",
          `${service} offers no usable pubsub service (${condition})`,
          { node, service, operation, condition },
          { cause: err },
        );
      return new PubsubError(
        "pubsub_error",
        `pubsub ${operation} on ${node} failed: ${condition}`,
        { node, service, operation, condition },
        { cause: err },
      );
    }
    if (err instanceof AgentError) return err;
    return new AgentError("publisher_internal", "telemetry publisher failed", { node }, { cause: err });
  }
}
