/**
 * The MQTT telemetry mirror: every reading the sampler produces is also published to an MQTT
 * broker, one message per reading on `<prefix><device>/channel/<channel>` (QoS 2, retained by
 * default, so the topic also holds each channel's last value), with an availability topic
 * `<prefix><device>/availability` ("online" as birth on every connect, "offline" as last will and
 * on a clean stop; both retained).
 *
 * Design: its own spool. The batcher hands each batch to both uplinks (TelemetryService's sink):
 * the XMPP spool and this mirror's spool. Each uplink removes a batch from its own spool when its
 * own peer acknowledged it, so neither waits for the other, an outage of one loses nothing for
 * either, and a bound (maxBytes, overflow policy) applies to each separately. The cost is writing
 * each batch twice; the alternative (one store with per-consumer ack cursors) would make the XMPP
 * spool's space depend on the slower uplink. See docs/mqtt.md.
 *
 * Delivery is exactly once across broker outages and reconnects, at least once across an agent
 * restart. Each reading is a QoS 2 publish over a port with a persistent MQTT session
 * (MqttConnection persistentSession): a flow cut by a lost connection is NOT failed to us; MQTT.js
 * finishes it after the reconnect (same packet id, or PUBREL if PUBREC had arrived) and the broker
 * delivers it once. So the mirror re-sends from its spool only what never entered a flow (refused:
 * mqtt_offline, mqtt_busy) or what the broker refused; a reading whose flow is still held waits for
 * that flow's callback. A batch leaves the mirror spool only when every reading's flow completed
 * (PUBCOMP). The flows live in MQTT.js's memory: after an agent crash or restart the spool re-sends
 * the batches not yet removed, and those readings may arrive twice (`seq` lets a consumer drop them).
 */
import { Backoff } from "../../kernel/backoff.js";
import { AgentError, describeError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { realTimers, type TimerHandle, type Timers } from "../../kernel/timers.js";
import type { MqttMirrorConfig } from "./mqtt-mirror-config.js";
import { mirrorSpoolConfig, openSpoolStore, type SpoolFileLayout } from "./open-spool.js";
import type { Reading } from "./reading.js";
import type { TelemetryMirror } from "./service.js";
import type { SpoolBatch, SpoolStats, SpoolStore } from "./spool.js";

/** What the mirror needs of a broker connection (drivers/mqtt/connection.ts MqttConnection fits). */
export interface MirrorBrokerPort {
  readonly connected: boolean;
  start(): void;
  stop(): Promise<void>;
  /** QoS 2 publishes must survive a reconnect (persistent session), or exactly once does not hold. */
  publish(topic: string, payload: string, opts: { qos: 0 | 1 | 2; retain: boolean }): Promise<void>;
  on(event: "connect", listener: () => void): () => void;
}

export function mirrorTopics(prefix: string, deviceId: string) {
  return {
    availability: `${prefix}${deviceId}/availability`,
    channel: (channelId: string) => `${prefix}${deviceId}/channel/${channelId}`,
  };
}

/** One reading as the mirror publishes it (docs/mqtt.md). */
export function encodeMirrorReading(r: Reading, historical: boolean): string {
  return JSON.stringify({
    seq: r.seq,
    value: r.value,
    ...(r.unit ? { unit: r.unit } : {}),
    timestamp: r.timestamp,
    quality: r.quality,
    ...(historical || r.historical ? { historical: true } : {}),
  });
}

export interface MqttMirrorOptions {
  config: MqttMirrorConfig;
  deviceId: string;
  port: MirrorBrokerPort;
  /** <device.dataDir>/telemetry: the file spool goes to mqtt-spool/ under it. */
  dataDir: string;
  /** From the telemetry spool config, so both spools behave alike on disk (mirrorSpoolConfig). */
  fileSpool?: SpoolFileLayout;
  /** Tests pass a store. */
  spool?: SpoolStore;
  timers?: Timers;
  logger?: Logger;
  random?: () => number;
}

export type MirrorState = "stopped" | "offline" | "idle" | "publishing" | "backoff";

export interface MirrorStats {
  state: MirrorState;
  topicPrefix: string;
  inFlight: number;
  publishedReadings: number;
  ackedBatches: number;
  failures: number;
  /** Batches that could not be stored in the mirror spool (its reject-new policy, disk error). */
  appendFailures: number;
  spool?: SpoolStats;
  lastError?: { code: string; message: string; at: number };
}

interface ActiveBatch {
  batch: SpoolBatch;
  unsent: Reading[];
  acked: number;
}

export class MqttMirror implements TelemetryMirror {
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly backoff: Backoff;
  private readonly topics: ReturnType<typeof mirrorTopics>;
  private spool: SpoolStore | undefined;
  private running = false;
  private pumping = false;
  private repump = false;
  private retryTimer: TimerHandle | undefined;
  private offConnect: (() => void) | undefined;
  private active: ActiveBatch[] = [];
  private highestPeeked = -1;
  private inflight = 0;
  private readonly counters = { publishedReadings: 0, ackedBatches: 0, failures: 0, appendFailures: 0 };
  private lastError: MirrorStats["lastError"];

  constructor(private readonly options: MqttMirrorOptions) {
    this.timers = options.timers ?? realTimers;
    this.logger = (options.logger ?? silentLogger).child({ component: "mqtt-mirror" });
    this.backoff = new Backoff({ ...options.config.retry, factor: 2 }, options.random);
    this.topics = mirrorTopics(options.config.topicPrefix, options.deviceId);
  }

  async start(): Promise<void> {
    if (this.running) return;
    const c = this.options.config;
    this.spool =
      this.options.spool ??
      (await openSpoolStore(mirrorSpoolConfig(c.spool, this.options.fileSpool), {
        dir: `${this.options.dataDir}/mqtt-spool`,
        timers: this.timers,
        logger: this.logger,
      }));
    this.running = true;
    this.offConnect = this.options.port.on("connect", () => {
      this.retryTimer?.cancel();
      this.retryTimer = undefined;
      this.notify();
    });
    this.options.port.start();
    this.notify();
  }

  /** Called by the telemetry batcher's sink with every batch, in order. */
  async append(readings: readonly Reading[]): Promise<void> {
    if (!this.spool) throw new AgentError("mirror_not_started", "the MQTT mirror is not running");
    try {
      await this.spool.append(readings);
    } catch (err) {
      this.counters.appendFailures++;
      throw err;
    }
    this.notify();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    this.offConnect?.();
    const port = this.options.port;
    if (port.connected) {
      // A clean stop says so at once; the broker's will covers the unclean ones.
      let timer: TimerHandle | undefined;
      await Promise.race([
        port.publish(this.topics.availability, "offline", { qos: 1, retain: true }).catch((err: unknown) => {
          this.logger.debug("offline availability not published", { error: describeError(err) });
        }),
        new Promise<void>((r) => {
          timer = this.timers.setTimeout(r, 1000);
        }),
      ]);
      timer?.cancel();
    }
    await port.stop();
    const spool = this.spool;
    this.spool = undefined;
    this.active = [];
    this.highestPeeked = -1;
    this.logger.info("mqtt mirror stopped", { ...this.counters, spool: spool?.stats() });
    await spool?.close();
  }

  stats(): MirrorStats {
    return {
      state: this.state,
      topicPrefix: this.options.config.topicPrefix,
      inFlight: this.inflight,
      ...this.counters,
      ...(this.spool ? { spool: this.spool.stats() } : {}),
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  get state(): MirrorState {
    if (!this.running) return "stopped";
    if (this.retryTimer) return "backoff";
    if (!this.options.port.connected) return "offline";
    return this.inflight > 0 ? "publishing" : "idle";
  }

  notify(): void {
    if (!this.running) return;
    if (this.pumping) {
      this.repump = true;
      return;
    }
    void this.pump();
  }

  // ----------------------------------------------------------------

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      do {
        this.repump = false;
        while (
          this.running &&
          !this.retryTimer &&
          this.options.port.connected &&
          this.inflight < this.options.config.inFlight
        ) {
          let ab = this.active.find((a) => a.unsent.length > 0);
          if (!ab) {
            const [b] = await this.spool!.peek(1, this.highestPeeked);
            if (!b || !this.running) break;
            this.highestPeeked = b.firstSeq;
            ab = { batch: b, unsent: [...b.readings], acked: 0 };
            this.active.push(ab);
          }
          this.send(ab, ab.unsent.shift()!);
        }
      } while (this.repump);
    } catch (err) {
      this.fail(err);
    } finally {
      this.pumping = false;
    }
  }

  private send(ab: ActiveBatch, r: Reading): void {
    this.inflight++;
    const payload = encodeMirrorReading(r, ab.batch.historical);
    this.options.port
      .publish(this.topics.channel(r.channelId), payload, { qos: 2, retain: this.options.config.retain })
      .then(
        () => {
          this.inflight--;
          this.counters.publishedReadings++;
          ab.acked++;
          if (ab.acked === ab.batch.readings.length) void this.complete(ab);
          this.notify();
        },
        (err: unknown) => {
          this.inflight--;
          // Never sent, refused by the broker, or the port stopped: no flow holds it any more, so it
          // goes back in seq order, ahead of anything not yet sent.
          ab.unsent.push(r);
          ab.unsent.sort((x, y) => x.seq - y.seq);
          this.fail(err);
        },
      );
  }

  private async complete(ab: ActiveBatch): Promise<void> {
    this.active = this.active.filter((a) => a !== ab);
    this.backoff.reset();
    try {
      await this.spool?.ack({ ids: [ab.batch.id] });
      this.counters.ackedBatches++;
    } catch (err) {
      // Delivered; if the spool cannot record it, it is re-sent after a restart (a duplicate, not a loss).
      this.logger.warn("mirrored batch could not be removed from the mirror spool", { error: describeError(err) });
    }
  }

  private fail(err: unknown): void {
    this.counters.failures++;
    const e =
      err instanceof AgentError
        ? err
        : new AgentError("mirror_publish_failed", "mirror publish failed", {}, { cause: err });
    const first = this.lastError === undefined || this.lastError.code !== e.code;
    this.lastError = { code: e.code, message: e.message, at: this.timers.now() };
    if (first)
      this.logger.warn("mqtt mirror publish failed; readings stay in the mirror spool", { error: describeError(e) });
    if (!this.running || this.retryTimer) return;
    // A lost connection resumes on "connect"; a refusal while connected (ACL, busy) waits with backoff.
    if (this.options.port.connected)
      this.retryTimer = this.timers.setTimeout(() => {
        this.retryTimer = undefined;
        this.notify();
      }, this.backoff.next());
  }
}
