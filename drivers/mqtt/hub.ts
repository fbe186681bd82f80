/**
 * MQTT devices as board hardware: sensor channels fed by topics and outputs commanded by topics,
 * all over one broker link. To the rest of the agent they are ordinary SensorChannels and
 * DigitalOutputs (drivers/types.ts).
 *
 * Inbound traffic is handled so that a flood costs O(1) per message and bounded memory:
 * - only the latest payload of each subscribed topic is kept (a Buffer <= maxPayloadBytes); a
 *   payload replaced before anyone read it is counted as `superseded` (that is the drop policy:
 *   a sensor's newest value is the one that matters);
 * - payloads are parsed when a channel is read (once per payload, shared by the channels of that
 *   topic), or at once on a state topic while a command waits for its confirmation;
 * - oversize payloads, malformed JSON and wrong types are counted per topic and logged at most
 *   once per topic per minute; none is fatal;
 * - discovery messages are rate-limited (discovery.maxPerSecond).
 * The per-topic state lives in topics.ts, the channels in sensor-channel.ts, the outputs in output.ts.
 */
import { type Logger, silentLogger } from "../../kernel/log.js";
import { realTimers, type TimerHandle, type Timers } from "../../kernel/timers.js";
import type { Unsubscribe } from "../events.js";
import type { MqttBrokerConfig, MqttOutputConfig } from "./config.js";
import { type DiscoveredEntity, isDiscoveryTopic, parseDiscovery } from "./discovery.js";
import type { MqttLink, MqttMessage } from "./link.js";
import { MqttOutput } from "./output.js";
import { type MqttChannelOptions, MqttSensorChannel } from "./sensor-channel.js";
import { type BadPayload, type MqttTopicStats, newTopicState, type TopicHost, type TopicState } from "./topics.js";

export type { MqttTopicStats } from "./topics.js";

export interface MqttHubOptions {
  link: MqttLink;
  broker: MqttBrokerConfig;
  timers?: Timers;
  logger?: Logger;
}

export interface MqttHubStats {
  connected: boolean;
  messages: number;
  superseded: number;
  oversize: number;
  malformed: number;
  wrongType: number;
  /** Messages on no topic we track (should stay 0: we subscribe to exact topics). */
  unmatched: number;
  discovery: { accepted: number; applied: number; dropped: number; invalid: number };
  topics: Record<string, MqttTopicStats>;
}

const LOG_EVERY_MS = 60_000;

export class MqttDeviceHub implements TopicHost {
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly topics = new Map<string, TopicState>();
  private readonly channelMap = new Map<string, MqttSensorChannel>();
  private readonly outputMap = new Map<string, MqttOutput>();
  private readonly discovered = new Map<string, DiscoveredEntity>();
  private readonly counters = { unmatched: 0 };
  private readonly disc = { accepted: 0, applied: 0, dropped: 0, invalid: 0, windowStart: 0, inWindow: 0 };
  private subscriptions: Unsubscribe[] = [];
  private started = false;

  constructor(private readonly options: MqttHubOptions) {
    this.timers = options.timers ?? realTimers;
    this.logger = (options.logger ?? silentLogger).child({ component: "mqtt-devices", broker: options.link.url });
  }

  get link(): MqttLink {
    return this.options.link;
  }

  addChannel(c: MqttChannelOptions): MqttSensorChannel {
    const ch = new MqttSensorChannel(this, this.track(c.mqtt.topic), c, this.timers);
    this.channelMap.set(c.id, ch);
    return ch;
  }

  addOutput(id: string, cfg: MqttOutputConfig, opts: { maxPulseMs?: number } = {}): MqttOutput {
    const state = cfg.stateTopic ? this.track(cfg.stateTopic) : undefined;
    const out = new MqttOutput(this, id, cfg, state, this.timers, opts.maxPulseMs ?? 60_000);
    this.outputMap.set(id, out);
    return out;
  }

  /**
   * Subscribes and connects. Resolves once connected and the retained discovery messages had a
   * moment to arrive, or after discovery.waitMs: a broker that is down never fails start (its
   * channels read "error" until data arrives).
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const link = this.options.link;
    this.subscriptions.push(
      link.on("message", (m) => this.onMessage(m)),
      link.on("offline", () => this.logger.warn("broker offline: MQTT channels turn stale")),
    );
    for (const t of this.topics.values())
      link.subscribe(t.topic, [...this.outputMap.values()].some((o) => o.stateTopic === t.topic) ? 1 : 0);
    const d = this.options.broker.discovery;
    if (d.enabled && this.channelMap.size > 0) {
      link.subscribe(`${d.prefix}/+/+/config`, 0);
      link.subscribe(`${d.prefix}/+/+/+/config`, 0);
    }
    link.start();
    if (d.enabled && this.channelMap.size > 0 && d.waitMs > 0) await this.settle(d.waitMs);
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    for (const off of this.subscriptions) off();
    this.subscriptions = [];
    for (const o of this.outputMap.values()) o.stop();
    await this.options.link.stop();
  }

  channels(): MqttSensorChannel[] {
    return [...this.channelMap.values()];
  }

  outputs(): MqttOutput[] {
    return [...this.outputMap.values()];
  }

  /** Discovered entities by state topic (configured or not), for status and docs. */
  discoveredEntities(): DiscoveredEntity[] {
    return [...this.discovered.values()];
  }

  stats(): MqttHubStats {
    const sum = { messages: 0, superseded: 0, oversize: 0, malformed: 0, wrongType: 0 };
    const topics: Record<string, MqttTopicStats> = {};
    for (const t of this.topics.values()) {
      topics[t.topic] = { ...t.stats };
      for (const k of Object.keys(sum) as Array<keyof typeof sum>) sum[k] += t.stats[k];
    }
    const { accepted, applied, dropped, invalid } = this.disc;
    return {
      connected: this.options.link.connected,
      ...sum,
      unmatched: this.counters.unmatched,
      discovery: { accepted, applied, dropped, invalid },
      topics,
    };
  }

  /** Reports a bad payload: counted always, logged at most once a minute per topic. */
  reportBad(t: TopicState, kind: BadPayload, detail: string, who: string): void {
    t.stats[kind]++;
    const now = this.timers.now();
    if (t.lastLogAt !== 0 && now - t.lastLogAt < LOG_EVERY_MS) return;
    t.lastLogAt = now;
    this.logger.warn("bad MQTT payload ignored", {
      topic: t.topic,
      problem: kind,
      detail,
      for: who,
      counts: { ...t.stats },
    });
  }

  /** Discovery info for a state topic, if any arrived. */
  discoveryFor(topic: string): DiscoveredEntity | undefined {
    return this.discovered.get(topic);
  }

  // ----------------------------------------------------------------

  private track(topic: string): TopicState {
    let t = this.topics.get(topic);
    if (!t) {
      t = newTopicState(topic);
      this.topics.set(topic, t);
    }
    return t;
  }

  private onMessage(m: MqttMessage): void {
    const t = this.topics.get(m.topic);
    if (t) {
      t.stats.messages++;
      if (m.payload.length > this.options.broker.maxPayloadBytes) {
        this.reportBad(t, "oversize", `${m.payload.length} bytes > ${this.options.broker.maxPayloadBytes}`, "topic");
        return;
      }
      if (t.latest && !t.latest.consumed) t.stats.superseded++;
      const text = m.payload.toString("utf8");
      t.latest = { text, receivedAt: this.timers.now(), consumed: false };
      for (const w of [...t.watchers]) w(text);
      return;
    }
    const d = this.options.broker.discovery;
    const component = d.enabled ? isDiscoveryTopic(d.prefix, m.topic) : undefined;
    if (component !== undefined) this.onDiscovery(m, component);
    else this.counters.unmatched++;
  }

  private onDiscovery(m: MqttMessage, component: string): void {
    const d = this.options.broker.discovery;
    const now = this.timers.now();
    if (now - this.disc.windowStart >= 1000) {
      this.disc.windowStart = now;
      this.disc.inWindow = 0;
    }
    if (++this.disc.inWindow > d.maxPerSecond || m.payload.length > this.options.broker.maxPayloadBytes) {
      this.disc.dropped++;
      return;
    }
    const r = parseDiscovery(m.topic, component, m.payload.toString("utf8"));
    if (!r.ok) {
      this.disc.invalid++;
      this.logger.debug("discovery message ignored", { topic: m.topic, reason: r.reason, detail: r.detail });
      return;
    }
    if (!r.entity) return;
    this.disc.accepted++;
    // Bounded: one entry per state topic we track, plus a capped number of others for status.
    if (!this.topics.has(r.entity.stateTopic) && this.discovered.size >= 256) return;
    const previous = this.discovered.get(r.entity.stateTopic);
    // Several entities share one Zigbee2MQTT state topic (temperature, humidity, ...): keep them all
    // reachable by path by storing per topic+path, plus the first under the bare topic.
    this.discovered.set(`${r.entity.stateTopic}#${r.entity.jsonPath ?? ""}`, r.entity);
    if (!previous) this.discovered.set(r.entity.stateTopic, r.entity);
    for (const ch of this.channelMap.values())
      if (ch.topic === r.entity.stateTopic && ch.applyDiscovery(r.entity)) {
        this.disc.applied++;
        this.logger.info("discovery applied to channel", {
          channel: ch.id,
          topic: ch.topic,
          jsonPath: ch.jsonPath,
          unit: ch.unit,
          staleAfterMs: ch.staleAfterMs,
        });
      }
  }

  private settle(waitMs: number): Promise<void> {
    // Wait for the connection (bounded by waitMs), then a short quiet spell for retained messages.
    return new Promise<void>((resolve) => {
      let quiet: TimerHandle | undefined;
      const offs: Unsubscribe[] = [];
      const finish = () => {
        overall.cancel();
        quiet?.cancel();
        for (const off of offs) off();
        resolve();
      };
      const overall = this.timers.setTimeout(finish, waitMs);
      const armQuiet = () => {
        quiet?.cancel();
        quiet = this.timers.setTimeout(finish, Math.min(250, waitMs));
      };
      if (this.options.link.connected) armQuiet();
      offs.push(
        this.options.link.on("connect", armQuiet),
        this.options.link.on("message", () => {
          if (quiet) armQuiet();
        }),
      );
    });
  }
}
