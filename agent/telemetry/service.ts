/**
 * Telemetry, assembled: sampler -> batcher -> spool -> publisher, with the sequence counter and the
 * status item. The composition root (agent/main.ts) builds one TelemetryService with the session
 * and a ChannelSource (boardChannelSource(board)) and calls start()/stop(). Nothing here knows the
 * concrete session or drivers.
 *
 * Order matters:
 *  1. spool opens first (its last seq is the sequence floor, and it replays what a crash left);
 *  2. the sequence counter opens (persisting its first block);
 *  3. the publisher starts (it drains the replayed spool as soon as the session is online);
 *  4. the sampler starts last, so its first reading has somewhere to go.
 * stop() runs the reverse: sampler, batcher flush, publisher, spool close.
 */
import { join } from "node:path";
import { Backoff } from "../../kernel/backoff.js";
import { describeError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { realTimers, type TimerHandle, type Timers } from "../../kernel/timers.js";
import { Batcher, type BatcherStats } from "./batcher.js";
import { buildStatusPresence, type DeviceStatus, type UpdateOutcome } from "./codec.js";
import { FileDeadLetters } from "./dead-letter.js";
import type { TelemetryConfig } from "./config.js";
import { SamplerError } from "./errors.js";
import { bareOf } from "./node-guard.js";
import { openSpoolStore } from "./open-spool.js";
import { type PublisherStats, type SquattedNode, TelemetryPublisher } from "./publisher.js";
import type { Reading } from "./reading.js";
import { type ChannelSource, Sampler, type SamplerStats } from "./sampler.js";
import { SequenceCounter } from "./sequence.js";
import type { SessionPort } from "./session-port.js";
import type { SpoolStats, SpoolStore } from "./spool.js";

/**
 * A second uplink fed with every batch (the MQTT mirror, agent/telemetry/mqtt-mirror.ts). It keeps
 * its own spool and acknowledgements, so it never holds up XMPP publishing and XMPP never holds it
 * up. append() failures are logged and counted by the mirror; they do not affect the XMPP spool.
 */
export interface TelemetryMirror {
  start(): Promise<void>;
  append(readings: readonly Reading[]): Promise<void>;
  stop(): Promise<void>;
  stats(): unknown;
}

export interface TelemetryServiceOptions {
  config: TelemetryConfig;
  /** From the `pubsub` config section. Empty service = PEP. */
  pubsub: { service?: string | undefined; nodePrefix: string };
  /**
   * The JIDs of the root config's operator rules. Accounts become readers of the nodes (with
   * telemetry.publish.readers); a rule naming a whole domain cannot be whitelisted (warned at start).
   */
  operators?: readonly string[];
  deviceId: string;
  /** Where spool/ and sequence.json go (normally <device.dataDir>/telemetry). */
  dataDir: string;
  session: SessionPort;
  source: ChannelSource;
  agentVersion: string;
  firmwareVersion?: () => string | undefined;
  timers?: Timers;
  logger?: Logger;
  /** Optional second uplink (MQTT mirror); started after the spool, stopped after the last batch. */
  mirror?: TelemetryMirror;
  /** Called when the telemetry state a person reads changes (publishing / blocked / dead letters). */
  onStateChange?: (state: string) => void;
  /** The last over-the-air update's outcome, carried by the status item (agent/update/). */
  updateOutcome?: () => UpdateOutcome | undefined;
  /** The agent's memory, carried by the status item (MiB there); without it the item has no <memory/>. */
  memory?: () => { rssBytes: number; heapUsedBytes: number };
}

export interface TelemetryStatus {
  service: string;
  nodes: { telemetry: string; status: string };
  /** Who may read the nodes: the access model and, unless it is open, the member accounts. */
  access: { model: string; readers: string[] };
  spool: SpoolStats;
  publisher: PublisherStats;
  batcher: BatcherStats;
  sampler: SamplerStats;
  mirror?: unknown;
}

/**
 * The readers of the nodes: every operator rule naming one account, plus telemetry.publish.readers,
 * as bare lower-case JIDs without duplicates; and the operator rules naming a whole domain, which a
 * whitelist cannot express.
 */
export function telemetryReaders(
  operators: readonly string[],
  readers: readonly string[],
): { accounts: string[]; domains: string[] } {
  const accounts = new Set<string>();
  const domains: string[] = [];
  for (const jid of operators) {
    if (jid.includes("@")) accounts.add(bareOf(jid));
    else domains.push(jid);
  }
  for (const jid of readers) accounts.add(bareOf(jid));
  return { accounts: [...accounts], domains };
}

/** Node names: <nodePrefix><deviceId>/telemetry and .../status (docs/protocol.md). */
export function telemetryNodes(nodePrefix: string, deviceId: string): { telemetry: string; status: string } {
  return { telemetry: `${nodePrefix}${deviceId}/telemetry`, status: `${nodePrefix}${deviceId}/status` };
}

export class TelemetryService {
  private spool: SpoolStore | undefined;
  /** What presence last reported: blocked condition, dead-letter file full, dead letters held, squatted nodes. */
  private lastStateKey = "||0|";
  private sampler: Sampler | undefined;
  private batcher: Batcher | undefined;
  private publisherInstance: TelemetryPublisher | undefined;
  private readonly logger: Logger;
  private readonly timers: Timers;
  readonly nodes: { telemetry: string; status: string };
  private readonly readers: { accounts: string[]; domains: string[] };
  /** Re-publishes the status item while its node is someone else's, with backoff. */
  private statusRetry: TimerHandle | undefined;
  private readonly statusBackoff: Backoff;
  private readonly onOnline = () => void this.publishStatus();
  /** Publishes the status item again every publish.statusIntervalMs while online. */
  private statusRefresh: TimerHandle | undefined;
  private statusInFlight = false;

  constructor(private readonly options: TelemetryServiceOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: "telemetry" });
    this.timers = options.timers ?? realTimers;
    this.nodes = telemetryNodes(options.pubsub.nodePrefix, options.deviceId);
    this.readers = telemetryReaders(options.operators ?? [], options.config.publish.readers);
    this.statusBackoff = new Backoff(options.config.publish.retry);
  }

  get publisher(): TelemetryPublisher | undefined {
    return this.publisherInstance;
  }

  async start(): Promise<void> {
    if (this.spool) return;
    const { config: c, session } = this.options;
    const spool = await openSpoolStore(c.spool, {
      dir: join(this.options.dataDir, "spool"),
      timers: this.timers,
      logger: this.logger,
    });
    this.spool = spool;
    const sequence = new SequenceCounter({
      path: join(this.options.dataDir, "sequence.json"),
      blockSize: c.sequence.blockSize,
      floor: spool.lastSeq + 1,
      logger: this.logger,
    });
    sequence.open();
    if (c.publish.accessModel === "whitelist" && this.readers.domains.length > 0)
      this.logger.warn(
        "operators given as a whole domain cannot be whitelisted: they cannot read telemetry; name their accounts in telemetry.publish.readers, or set telemetry.publish.accessModel: presence (PEP)",
        { domains: this.readers.domains, accessModel: c.publish.accessModel },
      );
    const publisher = new TelemetryPublisher({
      session,
      spool,
      deviceId: this.options.deviceId,
      service: this.options.pubsub.service,
      nodes: this.nodes,
      nodeConfig: {
        persistItems: c.publish.persistItems,
        maxItems: c.publish.maxItems,
        accessModel: c.publish.accessModel,
      },
      readers: this.readers.accounts,
      trustedOwners: c.publish.trustedOwners,
      publishOptions: c.publish.publishOptions,
      inFlight: c.publish.inFlight,
      requestTimeoutMs: c.publish.requestTimeoutMs,
      retry: c.publish.retry,
      deadLetter: {
        sink: new FileDeadLetters(join(this.options.dataDir, "dead-letter.jsonl"), c.publish.deadLetter.maxBytes),
        afterTries: c.publish.deadLetter.afterTries,
        afterMs: c.publish.deadLetter.afterMs,
      },
      timers: this.timers,
      logger: this.logger,
    });
    this.publisherInstance = publisher;
    // Presence tells operators when telemetry is blocked or has dead letters (docs/spool.md). Only
    // those changes count: a transient retry during a flaky link must not flood subscribers.
    const changed = () => {
      const p = publisher.stats();
      const squatted = (p.squatted ?? []).map((s) => s.node).join(",");
      const key = `${p.blocked?.condition ?? ""}|${p.blocked?.deadLetterFull ?? ""}|${p.deadLettered.batches}|${squatted}`;
      if (key === this.lastStateKey) return;
      this.lastStateKey = key;
      this.options.onStateChange?.(this.stateText());
      // The status item says it too, for whoever reads the fleet's items rather than presence;
      // not when the change comes from the status publish itself (its node squatted).
      if (session.online && !this.statusInFlight) void this.publishStatus();
    };
    publisher.on("failure", changed);
    publisher.on("published", changed);
    publisher.on("deadLettered", changed);
    publisher.on("ownership", changed);
    const mirror = this.options.mirror;
    if (mirror) await mirror.start();
    this.batcher = new Batcher({
      sink: async (readings) => {
        // Both uplinks get the batch; a mirror that cannot store it must not cost XMPP anything.
        const mirrored = mirror?.append(readings).catch((err: unknown) => {
          this.logger.warn("batch not stored for the mirror", {
            firstSeq: readings[0]?.seq,
            error: describeError(err),
          });
        });
        try {
          await spool.append(readings);
          publisher.notify();
        } finally {
          await mirrored;
        }
      },
      maxReadings: c.batch.maxReadings,
      maxAgeMs: c.batch.maxAgeMs,
      maxQueuedBatches: c.batch.maxQueuedBatches,
      timers: this.timers,
      logger: this.logger,
    });
    const batcher = this.batcher;
    this.sampler = new Sampler({
      source: this.options.source,
      sequence,
      sink: (r) => batcher.add(r),
      intervals: c.sampler.intervals,
      minIntervalMs: c.sampler.minIntervalMs,
      maxIntervalMs: c.sampler.maxIntervalMs,
      readTimeoutMs: c.sampler.readTimeoutMs,
      timers: this.timers,
      logger: this.logger,
    });
    publisher.start();
    session.on("online", this.onOnline);
    this.startStatusRefresh();
    this.sampler.start();
    if (session.online) void this.publishStatus();
    // Until the status command lands (commands issue), the figures an operator asks for are logged.
    this.logger.info("telemetry started", this.summary());
  }

  async stop(): Promise<void> {
    if (!this.spool) return;
    this.sampler?.stop();
    this.options.session.off("online", this.onOnline);
    this.statusRefresh?.cancel();
    this.statusRefresh = undefined;
    this.statusRetry?.cancel();
    this.statusRetry = undefined;
    await this.batcher?.stop();
    this.publisherInstance?.stop();
    await this.options.mirror?.stop();
    const spool = this.spool;
    this.spool = undefined;
    this.logger.info("telemetry stopped", this.summary(spool));
    await spool.close();
  }

  /** Changes a channel's sampling interval now (for the set-sampling command). */
  setInterval(channelId: string, ms: number): void {
    if (!this.sampler)
      throw new SamplerError("telemetry_not_started", "telemetry is not running", { channel: channelId });
    this.sampler.setInterval(channelId, ms);
  }

  /** For the status command: pubsub service, node names, spool depth and drops, publisher state. */
  status(): TelemetryStatus | undefined {
    if (!this.spool || !this.publisherInstance || !this.batcher || !this.sampler) return undefined;
    return {
      service: this.options.pubsub.service || "(PEP)",
      nodes: this.nodes,
      access: {
        model: this.options.config.publish.accessModel,
        readers: this.options.config.publish.accessModel === "open" ? [] : [...this.readers.accounts],
      },
      spool: this.spool.stats(),
      publisher: this.publisherInstance.stats(),
      batcher: this.batcher.stats(),
      sampler: this.sampler.stats(),
      ...(this.options.mirror ? { mirror: this.options.mirror.stats() } : {}),
    };
  }

  /**
   * Telemetry as a person reads it, in status and in presence: "publishing", "offline, 12 readings
   * waiting", "blocked: policy-violation on devices/x/telemetry since 08:12Z (3 tries)", "security
   * fault: devices/x/telemetry is owned by eve@example.org, not by this device; not publishing there
   * since 08:12Z (3 checks)", plus "; 2 batches (14 readings) dead-lettered" when the dead-letter
   * file holds any.
   */
  stateText(): string {
    const p = this.publisherInstance?.stats();
    if (!p) return "stopped";
    const waiting = this.spool?.stats().readings ?? 0;
    let text: string;
    if (p.squatted && p.squatted.length > 0) text = squattedText(p.squatted);
    else if (p.blocked)
      text = `blocked: ${p.blocked.condition} on ${p.blocked.node} since ${new Date(p.blocked.since).toISOString()} (${p.blocked.tries} ${p.blocked.tries === 1 ? "try" : "tries"}${p.blocked.deadLetterFull ? ", dead-letter file full" : ""})`;
    else if (p.state === "offline") text = "offline";
    else if (p.state === "backoff")
      text = `retrying${p.lastError ? ` after ${p.lastError.condition ?? p.lastError.code}` : ""}`;
    else text = "publishing";
    if (waiting > 0 && text !== "publishing") text += `, ${waiting} readings waiting`;
    const dl = p.deadLettered;
    if (dl.batches > 0)
      text += `; ${dl.batches} ${dl.batches === 1 ? "batch" : "batches"} (${dl.readings} readings) dead-lettered`;
    return text;
  }

  /** The device status as published in the status item; state "online" while running. */
  deviceStatus(state: "online" | "offline" = "online"): DeviceStatus {
    const m = this.options.memory?.();
    const spooled = this.spool?.stats().readings;
    const update = this.options.updateOutcome?.();
    return {
      ...this.presenceStatus(state),
      ...(m ? { memory: { rssMiB: roundMiB(m.rssBytes), heapUsedMiB: roundMiB(m.heapUsedBytes) } } : {}),
      ...(spooled !== undefined ? { spooledReadings: spooled } : {}),
      ...(update ? { update } : {}),
    };
  }

  /** Presence children the session can send with its initial presence (SessionOptions.presenceChildren). */
  presenceChildren() {
    return buildStatusPresence(this.presenceStatus()).children.filter((c) => typeof c !== "string");
  }

  /**
   * The device status without the memory figures: presence is rebuilt at every change it reports,
   * and buildStatusPresence leaves memory out anyway, so reading it there would be wasted.
   */
  private presenceStatus(state: "online" | "offline" = "online"): DeviceStatus {
    const fw = this.options.firmwareVersion?.();
    return {
      device: this.options.deviceId,
      state,
      timestamp: this.timers.now(),
      agentVersion: this.options.agentVersion,
      ...(fw ? { firmwareVersion: fw } : {}),
      channels: this.sampler?.describe() ?? this.options.source.channels(),
      ...(this.publisherInstance ? { telemetry: this.stateText() } : {}),
    };
  }

  private startStatusRefresh(): void {
    const every = this.options.config.publish.statusIntervalMs;
    if (every <= 0) return;
    this.statusRefresh = this.timers.setTimeout(() => {
      if (this.options.session.online) void this.publishStatus();
      this.startStatusRefresh();
    }, every);
  }

  async publishStatus(): Promise<void> {
    this.statusRetry?.cancel();
    this.statusRetry = undefined;
    this.statusInFlight = true;
    try {
      await this.publisherInstance?.publishStatus(this.deviceStatus());
      this.statusBackoff.reset();
    } catch (err) {
      // Already reported by the publisher ("failure" event + log).
      this.logger.debug("status item not published", { error: describeError(err) });
      // Offline, the next online re-sends it. Online, nothing else would until the next reconnect
      // (a timed-out request, a node the server just re-created, a squatter's node that goes
      // away): try again on our own, with backoff, so operators do not read a stale item for days.
      if (this.spool && this.options.session.online && !this.statusRetry)
        this.statusRetry = this.timers.setTimeout(() => {
          this.statusRetry = undefined;
          if (this.options.session.online) void this.publishStatus();
        }, this.statusBackoff.next());
    } finally {
      this.statusInFlight = false;
    }
  }

  private summary(spool = this.spool): Record<string, unknown> {
    const st = spool?.stats();
    return {
      service: this.options.pubsub.service || "(PEP)",
      nodes: this.nodes,
      spoolBatches: st?.batches,
      spoolReadings: st?.readings,
      spoolBytes: st?.bytes,
      dropped: st?.droppedReadings,
    };
  }
}

/** Bytes as MiB to one decimal, as the status item carries them. */
function roundMiB(bytes: number): number {
  return Math.round((bytes / 1_048_576) * 10) / 10;
}

/** "security fault: <node> is owned by ..., not by this device; ... not publishing there since <t> (<n> checks)". */
function squattedText(nodes: readonly SquattedNode[]): string {
  const what = nodes.map((s) => {
    if (s.reason === "unverifiable") return `${s.node}: its owner cannot be checked (${s.condition ?? "unsupported"})`;
    if (s.reason === "untrusted-owner")
      return `${s.node} has owners this device does not trust (${s.owners.join(", ")})`;
    return s.owners.length > 0
      ? `${s.node} is owned by ${s.owners.join(", ")}, not by this device`
      : `${s.node} is owned by another account`;
  });
  const since = Math.min(...nodes.map((s) => s.since));
  const checks = Math.max(...nodes.map((s) => s.checks));
  return `security fault: ${what.join("; ")}; not publishing there since ${new Date(since).toISOString()} (${checks} ${checks === 1 ? "check" : "checks"})`;
}
