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
 */
import { type Logger, silentLogger } from "../../agent/core/log.js";
import { realTimers, type TimerHandle, type Timers } from "../../agent/core/timers.js";
import type { Unsubscribe } from "../events.js";
import { Pulser } from "../pulse.js";
import { type DigitalOutput, DriverError, type PulseStarted, type Reading, type SensorChannel } from "../types.js";
import type { MqttBrokerConfig, MqttChannelConfig, MqttOutputConfig } from "./config.js";
import { type DiscoveredEntity, isDiscoveryTopic, parseDiscovery } from "./discovery.js";
import { MqttError } from "./errors.js";
import type { MqttLink, MqttMessage } from "./link.js";
import { extractState, extractValue, type PathSegment, parsePath, tryParseJson } from "./payload.js";

export interface MqttHubOptions {
  link: MqttLink;
  broker: MqttBrokerConfig;
  timers?: Timers;
  logger?: Logger;
}

export interface MqttTopicStats {
  messages: number;
  superseded: number;
  oversize: number;
  malformed: number;
  wrongType: number;
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

interface TopicState {
  topic: string;
  latest:
    | { text: string; receivedAt: number; consumed: boolean; parsed?: { ok: boolean; value?: unknown } }
    | undefined;
  stats: MqttTopicStats;
  lastLogAt: number;
  /** Watchers of output commands waiting for their confirmation. */
  watchers: Set<(text: string) => void>;
}

const LOG_EVERY_MS = 60_000;

export class MqttDeviceHub {
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

  addChannel(c: {
    id: string;
    kind: string;
    unit: string;
    intervalMs: number;
    staleAfterMs?: number | undefined;
    mqtt: MqttChannelConfig;
  }): MqttSensorChannel {
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

  // ---------------------------------------------------------------- used by channels and outputs

  /** Reports a bad payload: counted always, logged at most once a minute per topic. */
  reportBad(t: TopicState, kind: "malformed" | "wrongType" | "oversize", detail: string, who: string): void {
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

  /** The parsed JSON of a topic's latest payload, parsed at most once per payload. */
  json(t: TopicState): { ok: true; value: unknown } | { ok: false } {
    const latest = t.latest;
    if (!latest) return { ok: false };
    if (!latest.parsed) {
      const j = tryParseJson(latest.text);
      latest.parsed = j.ok ? { ok: true, value: j.value } : { ok: false };
    }
    return latest.parsed.ok ? { ok: true, value: latest.parsed.value } : { ok: false };
  }

  /** Discovery info for a state topic, if any arrived. */
  discoveryFor(topic: string): DiscoveredEntity | undefined {
    return this.discovered.get(topic);
  }

  // ----------------------------------------------------------------

  private track(topic: string): TopicState {
    let t = this.topics.get(topic);
    if (!t) {
      t = {
        topic,
        latest: undefined,
        stats: { messages: 0, superseded: 0, oversize: 0, malformed: 0, wrongType: 0 },
        lastLogAt: 0,
        watchers: new Set(),
      };
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

/** A channel whose value is the latest payload on a topic (JSON path or plain value). */
export class MqttSensorChannel implements SensorChannel {
  readonly id: string;
  readonly kind: string;
  readonly intervalMs: number;
  private unitValue: string;
  private path: PathSegment[] | undefined;
  private pathText: string | undefined;
  private staleMs: number | undefined;
  private readonly fromConfig: { unit: boolean; path: boolean; stale: boolean };
  private lastGood: { value: number; receivedAt: number } | undefined;

  constructor(
    private readonly hub: MqttDeviceHub,
    private readonly state: TopicState,
    c: {
      id: string;
      kind: string;
      unit: string;
      intervalMs: number;
      staleAfterMs?: number | undefined;
      mqtt: MqttChannelConfig;
    },
    private readonly timers: Timers,
  ) {
    this.id = c.id;
    this.kind = c.kind;
    this.intervalMs = c.intervalMs;
    this.unitValue = c.unit;
    this.pathText = c.mqtt.jsonPath;
    this.path = c.mqtt.jsonPath === undefined ? undefined : parsePath(c.mqtt.jsonPath);
    this.staleMs = c.staleAfterMs;
    this.fromConfig = { unit: c.unit !== "", path: c.mqtt.jsonPath !== undefined, stale: c.staleAfterMs !== undefined };
  }

  get topic(): string {
    return this.state.topic;
  }
  get unit(): string {
    return this.unitValue;
  }
  get jsonPath(): string | undefined {
    return this.pathText;
  }
  get staleAfterMs(): number | undefined {
    return this.staleMs;
  }

  /**
   * Fills what the config left open from a discovery message for this topic. Config always wins.
   * With several entities on one topic, the one whose path matches ours (or, without a path of
   * our own, one whose device class or unit fits our kind) is used. Returns true if anything changed.
   */
  applyDiscovery(e: DiscoveredEntity): boolean {
    if (this.fromConfig.path && e.jsonPath !== this.pathText) return false;
    if (!this.fromConfig.path) {
      // Without a configured path, only an entity naming our kind (device_class or path) applies.
      const fits = e.deviceClass === this.kind || e.jsonPath === this.kind || e.jsonPath === undefined;
      if (!fits) return false;
    }
    let changed = false;
    if (!this.fromConfig.path && e.jsonPath !== this.pathText) {
      this.pathText = e.jsonPath;
      this.path = e.jsonPath === undefined ? undefined : parsePath(e.jsonPath);
      changed = true;
    }
    if (!this.fromConfig.unit && e.unit !== undefined && e.unit !== this.unitValue) {
      this.unitValue = e.unit;
      changed = true;
    }
    if (!this.fromConfig.stale && e.expireAfterMs !== undefined && e.expireAfterMs !== this.staleMs) {
      this.staleMs = e.expireAfterMs;
      changed = true;
    }
    return changed;
  }

  async read(): Promise<Reading> {
    const now = this.timers.now();
    const device = `mqtt:${this.state.topic}`;
    this.refresh();
    const base = { channelId: this.id, unit: this.unitValue };
    if (!this.lastGood) {
      const error = new DriverError("sensor_fault", `no usable value received on ${this.state.topic} yet`, {
        device,
        channel: this.id,
        connected: this.hub.link.connected,
      });
      return { ...base, value: null, timestamp: now, quality: "error", error };
    }
    const { value, receivedAt } = this.lastGood;
    if (!this.hub.link.connected) {
      const error = new DriverError("sensor_stale", `broker ${this.hub.link.url} is not connected`, {
        device,
        channel: this.id,
        reason: "broker_offline",
      });
      return { ...base, value, timestamp: receivedAt, quality: "stale", error };
    }
    if (this.staleMs !== undefined && now - receivedAt > this.staleMs) {
      const error = new DriverError("sensor_stale", `no message on ${this.state.topic} for ${now - receivedAt} ms`, {
        device,
        channel: this.id,
        reason: "device_quiet",
        ageMs: now - receivedAt,
        staleAfterMs: this.staleMs,
      });
      return { ...base, value, timestamp: receivedAt, quality: "stale", error };
    }
    return { ...base, value, timestamp: receivedAt, quality: "good" };
  }

  /** Decodes the latest payload once, if it is new to this channel. */
  private refresh(): void {
    const latest = this.state.latest;
    if (!latest || latest === this.decodedAt) return;
    this.decodedAt = latest;
    latest.consumed = true;
    let parsed: unknown;
    if (this.path !== undefined) {
      const j = this.hub.json(this.state);
      if (!j.ok) {
        this.hub.reportBad(this.state, "malformed", "payload is not JSON", this.id);
        return;
      }
      parsed = j.value;
    }
    const r = extractValue(latest.text, this.path, parsed);
    if (!r.ok) {
      this.hub.reportBad(this.state, r.reason === "malformed" ? "malformed" : "wrongType", r.detail, this.id);
      return;
    }
    this.lastGood = { value: r.value, receivedAt: latest.receivedAt };
  }

  private decodedAt: TopicState["latest"];
}

/**
 * An output commanded over MQTT. With a state topic, set() resolves only when the device reports
 * the commanded state (the confirmed state is what read() returns); without one, on the broker's
 * PUBACK (the commanded state is then assumed).
 */
export class MqttOutput implements DigitalOutput {
  private known: boolean | undefined;
  private readonly pulser: Pulser;
  private waiting: { reject: (e: Error) => void } | undefined;
  private readonly statePath: PathSegment[] | undefined;
  private readonly stateOn: string;
  private readonly stateOff: string;
  private stateDecodedAt: TopicState["latest"];

  constructor(
    private readonly hub: MqttDeviceHub,
    readonly id: string,
    private readonly cfg: MqttOutputConfig,
    private readonly state: TopicState | undefined,
    private readonly timers: Timers,
    maxPulseMs: number,
  ) {
    this.pulser = new Pulser(
      { id, device: `mqtt:${cfg.commandTopic}`, drive: (v) => this.command(v) },
      maxPulseMs,
      timers,
    );
    this.statePath = cfg.stateJsonPath === undefined ? undefined : parsePath(cfg.stateJsonPath);
    const plain = (p: string, fallback: string) => (p.trimStart().startsWith("{") ? fallback : p);
    this.stateOn = cfg.stateOn ?? plain(cfg.payloadOn, "ON");
    this.stateOff = cfg.stateOff ?? plain(cfg.payloadOff, "OFF");
  }

  get stateTopic(): string | undefined {
    return this.cfg.stateTopic;
  }

  stop(): void {
    this.pulser.cancel();
    this.waiting?.reject(new MqttError("mqtt_not_started", `output ${this.id} stopped`, { output: this.id }));
  }

  async set(value: boolean): Promise<void> {
    this.pulser.cancel();
    await this.command(value);
  }

  pulse(durationMs: number, value = true): Promise<PulseStarted> {
    return this.pulser.start(durationMs, value);
  }

  async read(): Promise<boolean> {
    if (this.state) this.noteState();
    if (this.known === undefined)
      throw new MqttError("mqtt_state_unknown", `state of ${this.id} is not known yet`, {
        output: this.id,
        ...(this.cfg.stateTopic ? { topic: this.cfg.stateTopic } : {}),
      });
    return this.known;
  }

  private async command(value: boolean): Promise<void> {
    const payload = value ? this.cfg.payloadOn : this.cfg.payloadOff;
    const topic = this.cfg.commandTopic;
    if (!this.state) {
      await this.hub.link.publish(topic, payload, { qos: 1, retain: this.cfg.retain });
      this.known = value;
      return;
    }
    // A newer command replaces an older one still waiting for its confirmation.
    this.waiting?.reject(new MqttError("mqtt_superseded", `a newer command replaced this one`, { output: this.id }));
    const confirmed = new Promise<void>((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        done();
        reject(
          new MqttError(
            "mqtt_confirm_timeout",
            `${this.id}: the device did not report the state "${value ? "on" : "off"}" on ${this.cfg.stateTopic} within ${this.cfg.confirmTimeoutMs} ms`,
            {
              output: this.id,
              topic: this.cfg.stateTopic,
              confirmTimeoutMs: this.cfg.confirmTimeoutMs,
              last: this.known,
            },
          ),
        );
      }, this.cfg.confirmTimeoutMs);
      const watcher = () => {
        if (this.noteState() === value) {
          done();
          resolve();
        }
      };
      const me = {
        reject: (e: Error) => {
          done();
          reject(e);
        },
      };
      const done = () => {
        timer.cancel();
        this.state!.watchers.delete(watcher);
        if (this.waiting === me) this.waiting = undefined;
      };
      this.waiting = me;
      this.state!.watchers.add(watcher);
    });
    confirmed.catch(() => undefined);
    try {
      await this.hub.link.publish(topic, payload, { qos: 1, retain: this.cfg.retain });
    } catch (err) {
      this.waiting?.reject(err as Error);
      throw err;
    }
    await confirmed;
  }

  /** Decodes the latest state message; returns the state it says (undefined: not a state we know). */
  private noteState(): boolean | undefined {
    const latest = this.state?.latest;
    if (!latest) return undefined;
    // Each state payload is decoded once; the state is parsed lazily (read) or while a command waits.
    if (latest === this.stateDecodedAt) return this.known;
    this.stateDecodedAt = latest;
    latest.consumed = true;
    const s = extractState(latest.text, this.statePath);
    if (s === this.stateOn) this.known = true;
    else if (s === this.stateOff) this.known = false;
    else {
      this.hub.reportBad(
        this.state!,
        s === undefined && this.statePath !== undefined ? "malformed" : "wrongType",
        `state ${JSON.stringify(s ?? latest.text.slice(0, 40))} is neither ${this.stateOn} nor ${this.stateOff}`,
        this.id,
      );
      return undefined;
    }
    return this.known;
  }
}
