/**
 * Simulated MQTT devices in the style of Zigbee2MQTT, played against a real broker so the agent's
 * MQTT backend can be shown and tested without radios:
 *
 * - a sensor publishing `{"temperature":..,"humidity":..,"battery":..,"linkquality":..}` on
 *   `zigbee2mqtt/<name>` every periodMs, with retained Home Assistant discovery messages for
 *   temperature and humidity (units, value_template, expire_after);
 * - a switch listening on `zigbee2mqtt/<name>/set` (`{"state":"ON"|"OFF"|"TOGGLE"}` or plain
 *   ON/OFF/TOGGLE) and reporting `{"state":..}` retained on `zigbee2mqtt/<name>`, after an optional
 *   delay; it can be told to ignore commands, so confirmation timeouts can be shown.
 *
 * One MQTT connection serves all devices. Values are a seeded random walk (firmware-sim/random.ts).
 */
import type { IClientOptions, MqttClient } from "mqtt";
import { connectMqttClient } from "../../drivers/mqtt/client-factory.js";
import { realTimers, type TimerHandle, type Timers } from "../../kernel/timers.js";

export interface SimSensorSpec {
  name: string;
  periodMs: number;
  /** Starting values; they then wander a little each period. */
  temperature?: number;
  humidity?: number;
  /** expire_after announced in discovery (seconds); 0: none. */
  expireAfterS?: number;
}

export interface SimSwitchSpec {
  name: string;
  initial?: boolean;
  /** Delay before the state report, like a radio round trip. */
  delayMs?: number;
}

export interface SimMqttDevicesOptions {
  url: string;
  sensors?: SimSensorSpec[];
  switches?: SimSwitchSpec[];
  baseTopic?: string;
  /** Home Assistant discovery prefix; null: publish no discovery messages. */
  discoveryPrefix?: string | null;
  clientId?: string;
  /** Extra MQTT.js options (username, password, ca, ...). */
  mqttOptions?: IClientOptions;
  timers?: Timers;
  random?: () => number;
}

interface SensorState {
  spec: SimSensorSpec;
  temperature: number;
  humidity: number;
  battery: number;
  timer?: TimerHandle;
  published: number;
}

interface SwitchState {
  spec: SimSwitchSpec;
  on: boolean;
  ignoreCommands: boolean;
  commands: number;
}

export class SimMqttDevices {
  private client: MqttClient | undefined;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly base: string;
  private readonly sensors = new Map<string, SensorState>();
  private readonly switches = new Map<string, SwitchState>();
  private readonly pendingTimers = new Set<TimerHandle>();

  constructor(private readonly options: SimMqttDevicesOptions) {
    this.timers = options.timers ?? realTimers;
    this.random = options.random ?? Math.random;
    this.base = options.baseTopic ?? "zigbee2mqtt";
    for (const s of options.sensors ?? [])
      this.sensors.set(s.name, {
        spec: s,
        temperature: s.temperature ?? 21,
        humidity: s.humidity ?? 45,
        battery: 97,
        published: 0,
      });
    for (const s of options.switches ?? [])
      this.switches.set(s.name, { spec: s, on: s.initial ?? false, ignoreCommands: false, commands: 0 });
  }

  /** Connects, publishes discovery and initial states, starts the sensors. */
  async start(): Promise<void> {
    if (this.client) return;
    const client = await connected(
      connectMqttClient(this.options.url, {
        clientId: this.options.clientId ?? `iot-sim-mqtt-${process.pid}`,
        reconnectPeriod: 500,
        ...this.options.mqttOptions,
      }),
    );
    this.client = client;
    client.on("error", () => undefined); // reconnects on its own; the test/demo sees the effect
    client.on("message", (topic, payload) => this.onMessage(topic, payload.toString("utf8")));
    if (this.switches.size > 0)
      await client.subscribeAsync(
        [...this.switches.keys()].map((n) => `${this.base}/${n}/set`),
        { qos: 1 },
      );
    await this.publishDiscovery();
    for (const sw of this.switches.values()) await this.reportSwitch(sw);
    for (const s of this.sensors.values()) {
      await this.publishSensor(s);
      s.timer = this.timers.setInterval(() => void this.publishSensor(s), s.spec.periodMs);
    }
  }

  async stop(): Promise<void> {
    for (const s of this.sensors.values()) s.timer?.cancel();
    for (const t of this.pendingTimers) t.cancel();
    this.pendingTimers.clear();
    const c = this.client;
    this.client = undefined;
    if (c) await c.endAsync(true);
  }

  switchState(name: string): boolean {
    return this.sw(name).on;
  }

  commandsReceived(name: string): number {
    return this.sw(name).commands;
  }

  /** A switch that stops answering (dead battery, out of range). */
  setIgnoreCommands(name: string, ignore: boolean): void {
    this.sw(name).ignoreCommands = ignore;
  }

  publishedCount(name: string): number {
    return this.sensors.get(name)?.published ?? 0;
  }

  /** Publishes a raw payload on a topic (malformed-input tests). */
  async raw(topic: string, payload: string | Buffer, qos: 0 | 1 = 0): Promise<void> {
    await this.client?.publishAsync(topic, payload, { qos });
  }

  // ----------------------------------------------------------------

  private sw(name: string): SwitchState {
    const s = this.switches.get(name);
    if (!s) throw new Error(`no simulated switch ${name}`);
    return s;
  }

  private async publishDiscovery(): Promise<void> {
    const prefix = this.options.discoveryPrefix === undefined ? "homeassistant" : this.options.discoveryPrefix;
    if (prefix === null || !this.client) return;
    const device = (name: string) => ({
      identifiers: [`iot-sim-${name}`],
      name,
      manufacturer: "iot-sim",
      model: "sim",
    });
    for (const s of this.sensors.values()) {
      const n = s.spec.name;
      for (const [field, unit, cls] of [
        ["temperature", "°C", "temperature"],
        ["humidity", "%", "humidity"],
        ["battery", "%", "battery"],
      ] as const) {
        const cfg: Record<string, unknown> = {
          name: `${n} ${field}`,
          unique_id: `${n}_${field}`,
          state_topic: `${this.base}/${n}`,
          value_template: `{{ value_json.${field} }}`,
          unit_of_measurement: unit,
          device_class: cls,
          device: device(n),
        };
        if (s.spec.expireAfterS) cfg.expire_after = s.spec.expireAfterS;
        await this.client.publishAsync(`${prefix}/sensor/${n}/${field}/config`, JSON.stringify(cfg), {
          qos: 1,
          retain: true,
        });
      }
    }
    for (const sw of this.switches.values()) {
      const n = sw.spec.name;
      await this.client.publishAsync(
        `${prefix}/switch/${n}/switch/config`,
        JSON.stringify({
          name: n,
          unique_id: `${n}_switch`,
          state_topic: `${this.base}/${n}`,
          command_topic: `${this.base}/${n}/set`,
          value_template: "{{ value_json.state }}",
          payload_on: '{"state":"ON"}',
          payload_off: '{"state":"OFF"}',
          state_on: "ON",
          state_off: "OFF",
          device: device(n),
        }),
        { qos: 1, retain: true },
      );
    }
  }

  private async publishSensor(s: SensorState): Promise<void> {
    const c = this.client;
    if (!c) return;
    const walk = (v: number, step: number) => Math.round((v + (this.random() - 0.5) * step) * 100) / 100;
    s.temperature = walk(s.temperature, 0.4);
    s.humidity = Math.min(100, Math.max(0, walk(s.humidity, 1)));
    const payload = JSON.stringify({
      temperature: s.temperature,
      humidity: s.humidity,
      battery: s.battery,
      linkquality: 100 + Math.floor(this.random() * 50),
    });
    try {
      await c.publishAsync(`${this.base}/${s.spec.name}`, payload, { qos: 0 });
      s.published++;
    } catch {
      // Broker away: the next period tries again, as a real device would.
    }
  }

  private onMessage(topic: string, text: string): void {
    const m =
      topic.startsWith(`${this.base}/`) && topic.endsWith("/set") ? topic.slice(this.base.length + 1, -4) : undefined;
    const sw = m === undefined ? undefined : this.switches.get(m);
    if (!sw) return;
    sw.commands++;
    if (sw.ignoreCommands) return;
    let wanted: string | undefined;
    try {
      const doc = JSON.parse(text) as unknown;
      if (doc && typeof doc === "object" && "state" in doc) wanted = String((doc as { state: unknown }).state);
    } catch {
      wanted = text.trim();
    }
    const w = wanted?.toUpperCase();
    if (w === "ON") sw.on = true;
    else if (w === "OFF") sw.on = false;
    else if (w === "TOGGLE") sw.on = !sw.on;
    else return; // Zigbee2MQTT ignores what it does not understand (and logs it)
    const report = () => void this.reportSwitch(sw);
    if (sw.spec.delayMs) {
      const t = this.timers.setTimeout(() => {
        this.pendingTimers.delete(t);
        report();
      }, sw.spec.delayMs);
      this.pendingTimers.add(t);
    } else report();
  }

  private async reportSwitch(sw: SwitchState): Promise<void> {
    try {
      await this.client?.publishAsync(
        `${this.base}/${sw.spec.name}`,
        JSON.stringify({ state: sw.on ? "ON" : "OFF", linkquality: 120 }),
        { qos: 1, retain: true },
      );
    } catch {
      // Broker away: the state is re-reported on the next command.
    }
  }
}

/**
 * Resolves once the client has connected (or was ended), rejects on its first error after ending
 * it: what mqtt.connectAsync() does, for a client from connectMqttClient (the simulator, like the
 * agent, does not load mqtt's index module; drivers/mqtt/client-factory.ts).
 */
function connected(client: MqttClient): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const settle = (err?: Error) => {
      client.off("connect", onConnect);
      client.off("end", onEnd);
      client.off("error", settle);
      if (err) {
        client.end();
        reject(err);
      } else resolve(client);
    };
    const onConnect = () => settle();
    const onEnd = () => settle();
    client.on("connect", onConnect);
    client.on("end", onEnd);
    client.on("error", settle);
  });
}
