/**
 * An MQTT sensor channel: its value is the latest payload on a topic (a JSON path into it, or the
 * whole payload), decoded once per payload when the channel is read. Home Assistant discovery may
 * fill what the config left open (docs/mqtt.md).
 */
import type { Timers } from "../../kernel/timers.js";
import { DriverError, type Reading, type SensorChannel } from "../types.js";
import type { MqttChannelConfig } from "./config.js";
import type { DiscoveredEntity } from "./discovery.js";
import { extractValue, type PathSegment, parsePath } from "./payload.js";
import { latestJson, type TopicHost, type TopicState } from "./topics.js";

export interface MqttChannelOptions {
  id: string;
  kind: string;
  unit: string;
  intervalMs: number;
  staleAfterMs?: number | undefined;
  mqtt: MqttChannelConfig;
}

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
    private readonly hub: TopicHost,
    private readonly state: TopicState,
    c: MqttChannelOptions,
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
      const j = latestJson(this.state);
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
