/**
 * An output commanded over MQTT (a Zigbee2MQTT or Tasmota switch). With a state topic, set()
 * resolves only when the device reports the commanded state (the confirmed state is what read()
 * returns); without one, on the broker's PUBACK (the commanded state is then assumed). Pulses
 * follow the HAL's one rule (drivers/pulse.ts).
 */
import type { Timers } from "../../kernel/timers.js";
import { Pulser } from "../pulse.js";
import type { DigitalOutput, PulseStarted } from "../types.js";
import type { MqttOutputConfig } from "./config.js";
import { MqttError } from "./errors.js";
import { extractState, type PathSegment, parsePath } from "./payload.js";
import type { TopicHost, TopicState } from "./topics.js";

export class MqttOutput implements DigitalOutput {
  private known: boolean | undefined;
  private readonly pulser: Pulser;
  private waiting: { reject: (e: Error) => void } | undefined;
  private readonly statePath: PathSegment[] | undefined;
  private readonly stateOn: string;
  private readonly stateOff: string;
  private stateDecodedAt: TopicState["latest"];

  constructor(
    private readonly hub: TopicHost,
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
    const state = this.state;
    if (!state) {
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
        state.watchers.delete(watcher);
        if (this.waiting === me) this.waiting = undefined;
      };
      this.waiting = me;
      state.watchers.add(watcher);
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
    const state = this.state;
    const latest = state?.latest;
    if (!state || !latest) return undefined;
    // Each state payload is decoded once; the state is parsed lazily (read) or while a command waits.
    if (latest === this.stateDecodedAt) return this.known;
    this.stateDecodedAt = latest;
    latest.consumed = true;
    const s = extractState(latest.text, this.statePath);
    if (s === this.stateOn) this.known = true;
    else if (s === this.stateOff) this.known = false;
    else {
      this.hub.reportBad(
        state,
        s === undefined && this.statePath !== undefined ? "malformed" : "wrongType",
        `state ${JSON.stringify(s ?? latest.text.slice(0, 40))} is neither ${this.stateOn} nor ${this.stateOff}`,
        this.id,
      );
      return undefined;
    }
    return this.known;
  }
}
