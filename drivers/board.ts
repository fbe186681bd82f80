/**
 * Board: builds the channels, outputs, inputs and serial links the `board` config describes, on
 * the backends the entrypoint hands in (real or simulated: the Board never chooses), and reports
 * what happens to them as typed events: channel quality changes, debounced input edges, serial
 * unplug/replug. Constructor does nothing; start() opens, stop() releases everything it opened.
 */
import type { BackoffOptions } from "../kernel/backoff.js";
import { describeError } from "../kernel/errors.js";
import { type Logger, silentLogger } from "../kernel/log.js";
import { realTimers, type Timers } from "../kernel/timers.js";
import { type BoardConfig, boardUsesGpio, type ChannelConfig, type OutputConfig } from "./config.js";
import { TypedEvents, type Unsubscribe } from "./events.js";
import type { GpioBackend } from "./gpio/backend.js";
import { DigitalInputChannel } from "./gpio/channel.js";
import { GpioInputPin, GpioOutputPin } from "./gpio/pins.js";
import type { MqttBrokerConfig } from "./mqtt/config.js";
import { MqttDeviceHub } from "./mqtt/hub.js";
import type { MqttLink } from "./mqtt/link.js";
import { SerialActuatorOutput } from "./serial/actuator.js";
import type { SerialBackend } from "./serial/backend.js";
import { SerialSensorChannel } from "./serial/channel.js";
import { McuClient } from "./serial/client.js";
import { LineSensorChannel, LineValues } from "./serial/line-channel.js";
import { LineSerialLink } from "./serial/line-link.js";
import { FramedSerialLink } from "./serial/link.js";
import {
  type DigitalInput,
  type DigitalOutput,
  DriverError,
  type EventSource,
  type InputEdge,
  type LineStats,
  type Quality,
  type Reading,
  type RequestStats,
  type SensorChannel,
  type SerialDevice,
  type SerialLinkState,
  type SerialStats,
} from "./types.js";

/** The backends the entrypoint chose. Each is required only if the config uses it. */
export interface BoardBackends {
  gpio?: GpioBackend;
  serial?: SerialBackend;
  /** Makes the connection to board.mqtt (normally an MqttConnection; tests pass a fake link). */
  mqtt?: (config: MqttBrokerConfig) => MqttLink;
}

export interface BoardOptions {
  config: BoardConfig;
  backends: BoardBackends;
  timers?: Timers;
  logger?: Logger;
  /** Jitter source for reopen backoff (tests pin it). */
  random?: () => number;
}

export interface QualityChange {
  channelId: string;
  quality: Quality;
  /** undefined for a channel's first reading. */
  previous: Quality | undefined;
  error?: DriverError;
}

export interface BoardEvents {
  quality: QualityChange;
  edge: InputEdge;
  unplug: { linkId: string; path: string; error: DriverError };
  replug: { linkId: string; path: string; attempts: number };
}

export type LinkStats =
  | { protocol: "framed"; state: SerialLinkState; link: SerialStats; requests: RequestStats }
  | { protocol: "line"; state: SerialLinkState; link: LineStats };

/** An output as the board holds it: what it must release at stop. */
type BoardOutput = DigitalOutput & { close?(): Promise<void>; stop?(): void };

type LinkEntry =
  | { protocol: "framed"; link: FramedSerialLink; client: McuClient }
  | { protocol: "line"; link: LineSerialLink; values: LineValues };

export class Board implements EventSource<BoardEvents> {
  private readonly events: TypedEvents<BoardEvents>;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly linkEntries = new Map<string, LinkEntry>();
  private readonly outputMap = new Map<string, BoardOutput>();
  private readonly inputMap = new Map<string, GpioInputPin>();
  private readonly channelMap = new Map<string, TrackedChannel>();
  private subscriptions: Unsubscribe[] = [];
  private mqttHub: MqttDeviceHub | undefined;
  private started = false;

  constructor(private readonly options: BoardOptions) {
    this.timers = options.timers ?? realTimers;
    this.logger = (options.logger ?? silentLogger).child({ component: "board" });
    this.events = new TypedEvents((err, event) =>
      this.logger.error("board listener threw", { event: String(event), error: describeError(err) }),
    );
  }

  on<K extends keyof BoardEvents>(event: K, listener: (payload: BoardEvents[K]) => void): Unsubscribe {
    return this.events.on(event, listener);
  }

  /**
   * Opens GPIO lines (all or nothing: a pin that cannot be opened is a wiring or config error and
   * start() rejects after releasing the others) and serial links (a device absent at start is
   * reported as unplugged and retried with backoff; it does not fail start()).
   */
  async start(): Promise<void> {
    if (this.started) return;
    const { config } = this.options;
    // Every backend the config needs is checked before anything is opened.
    if (boardUsesGpio(config)) this.gpioBackend();
    if (Object.keys(config.serial).length > 0) this.serialBackend();
    const usesMqtt = [...Object.values(config.outputs), ...Object.values(config.channels)].some(
      (e) => e.source === "mqtt",
    );
    if (usesMqtt) this.mqttBackend();
    this.started = true;
    try {
      this.buildLinks();
      await this.openOutputs();
      await this.openInputs();
      this.buildChannels();
      for (const [id, entry] of this.linkEntries) {
        if (entry.protocol === "framed") entry.client.start();
        else entry.values.start();
        const device: SerialDevice = entry.link;
        this.subscriptions.push(
          device.on("unplug", (e) => this.onUnplug(id, e)),
          device.on("replug", (e) => this.events.emit("replug", e)),
        );
      }
      await Promise.all([...this.linkEntries.values()].map(({ link }) => link.start()));
      // A broker that is down does not fail start: MQTT channels read "error"/"stale" until it answers.
      await this.mqttHub?.start();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    for (const off of this.subscriptions) off();
    this.subscriptions = [];
    for (const o of this.outputMap.values()) o.stop?.();
    const closing: Array<Promise<void>> = [];
    for (const o of this.outputMap.values()) if (o.close) closing.push(o.close());
    for (const i of this.inputMap.values()) closing.push(i.close());
    for (const entry of this.linkEntries.values()) {
      if (entry.protocol === "framed") entry.client.stop();
      else entry.values.stop();
      closing.push(entry.link.close());
    }
    if (this.mqttHub) closing.push(this.mqttHub.stop());
    this.mqttHub = undefined;
    const results = await Promise.allSettled(closing);
    for (const r of results)
      if (r.status === "rejected") this.logger.warn("release failed during stop", { error: describeError(r.reason) });
    this.outputMap.clear();
    this.inputMap.clear();
    this.channelMap.clear();
    this.linkEntries.clear();
  }

  channels(): SensorChannel[] {
    return [...this.channelMap.values()];
  }

  channel(id: string): SensorChannel {
    return this.get(this.channelMap, id, "channel");
  }

  outputs(): DigitalOutput[] {
    return [...this.outputMap.values()];
  }

  output(id: string): DigitalOutput {
    return this.get(this.outputMap, id, "output");
  }

  inputs(): DigitalInput[] {
    return [...this.inputMap.values()];
  }

  input(id: string): DigitalInput {
    return this.get(this.inputMap, id, "input");
  }

  /** The MQTT devices and their counters (undefined when the board has none). */
  mqtt(): MqttDeviceHub | undefined {
    return this.mqttHub;
  }

  links(): SerialDevice[] {
    return [...this.linkEntries.values()].map((e) => e.link);
  }

  link(id: string): SerialDevice {
    return this.get(this.linkEntries, id, "link").link;
  }

  /** The protocol client of a framed link, for device-level commands (version, inventory, ping). */
  client(linkId: string): McuClient {
    return this.framedClient(linkId);
  }

  /** The last quality seen per channel (undefined before its first read). */
  qualities(): Record<string, Quality | undefined> {
    return Object.fromEntries([...this.channelMap].map(([id, c]) => [id, c.quality]));
  }

  /** The GPIO lines this board holds open now (none before start or after stop). */
  gpioLines(): Array<{ id: string; device: string; direction: "out" | "in" }> {
    const out: Array<{ id: string; device: string; direction: "out" | "in" }> = [];
    for (const [id, o] of this.outputMap)
      if (o instanceof GpioOutputPin) out.push({ id, device: o.device, direction: "out" });
    for (const [id, i] of this.inputMap) out.push({ id, device: i.device, direction: "in" });
    return out;
  }

  stats(): Record<string, LinkStats> {
    const out: Record<string, LinkStats> = {};
    for (const [id, e] of this.linkEntries)
      out[id] =
        e.protocol === "framed"
          ? { protocol: "framed", state: e.link.state, link: e.link.stats(), requests: e.client.stats() }
          : { protocol: "line", state: e.link.state, link: e.link.stats() };
    return out;
  }

  // ---- building ---------------------------------------------------------------------------

  private get<T>(map: Map<string, T>, id: string, what: string): T {
    const v = map.get(id);
    if (v === undefined)
      throw new DriverError(
        this.started ? "driver_bad_argument" : "driver_not_started",
        `no ${what} ${JSON.stringify(id)} on this board${this.started ? "" : " (not started)"}`,
        {
          device: "board",
          channel: id,
        },
      );
    return v;
  }

  private framedClient(linkId: string): McuClient {
    const entry = this.get(this.linkEntries, linkId, "link");
    if (entry.protocol !== "framed")
      throw new DriverError(
        "driver_bad_argument",
        `link ${linkId} speaks the line protocol: no request/response client`,
        {
          device: `serial:${linkId}`,
        },
      );
    return entry.client;
  }

  private gpioBackend(): GpioBackend {
    const gpio = this.options.backends.gpio;
    if (!gpio)
      throw new DriverError("driver_backend_missing", "board uses GPIO but no GPIO backend was given", {
        device: "gpio",
      });
    return gpio;
  }

  private serialBackend(): SerialBackend {
    const serial = this.options.backends.serial;
    if (!serial)
      throw new DriverError("driver_backend_missing", "board uses serial links but no serial backend was given", {
        device: "serial",
      });
    return serial;
  }

  private mqttBackend(): { connect: (config: MqttBrokerConfig) => MqttLink; broker: MqttBrokerConfig } {
    const connect = this.options.backends.mqtt;
    const broker = this.options.config.mqtt;
    if (!connect || !broker)
      throw new DriverError("driver_backend_missing", "board uses MQTT devices but no MQTT backend was given", {
        device: "mqtt",
      });
    return { connect, broker };
  }

  /** The one broker link of all MQTT entries, made by the first of them. */
  private hub(): MqttDeviceHub {
    if (!this.mqttHub) {
      const { connect, broker } = this.mqttBackend();
      this.mqttHub = new MqttDeviceHub({ link: connect(broker), broker, timers: this.timers, logger: this.logger });
    }
    return this.mqttHub;
  }

  private buildLinks(): void {
    const { config } = this.options;
    const entries = Object.entries(config.serial);
    if (entries.length === 0) return;
    const serial = this.serialBackend();
    for (const [id, c] of entries) {
      const common = {
        id,
        path: c.path,
        backend: serial,
        settings: {
          baudRate: c.baudRate,
          dataBits: c.dataBits as 5 | 6 | 7 | 8,
          parity: c.parity,
          stopBits: c.stopBits as 1 | 2,
        },
        reopen: { ...c.reopen, minDelayMs: Math.min(50, c.reopen.initialDelayMs) } satisfies BackoffOptions,
        timers: this.timers,
        logger: this.logger,
        ...(this.options.random ? { random: this.options.random } : {}),
      };
      if (c.protocol === "line") {
        const link = new LineSerialLink({ ...common, maxLineBytes: c.maxLineBytes });
        const keys = Object.values(config.channels).flatMap((ch) =>
          ch.source === "serial" && ch.link === id ? [ch.sensor] : [],
        );
        this.linkEntries.set(id, { protocol: "line", link, values: new LineValues(link, keys, this.timers) });
        continue;
      }
      const link = new FramedSerialLink({
        ...common,
        maxFrameBytes: c.maxFrameBytes,
        frameTimeoutMs: c.frameTimeoutMs,
      });
      const client = new McuClient({
        link,
        timers: this.timers,
        requestTimeoutMs: c.requestTimeoutMs,
        maxInFlight: c.maxInFlight,
      });
      this.linkEntries.set(id, { protocol: "framed", link, client });
    }
  }

  private async openOutputs(): Promise<void> {
    for (const [id, o] of Object.entries(this.options.config.outputs))
      this.outputMap.set(id, await this.openOutput(id, o));
  }

  private async openOutput(id: string, o: OutputConfig): Promise<BoardOutput> {
    const { maxPulseMs, gpio } = this.options.config;
    switch (o.source) {
      case "mqtt":
        return this.hub().addOutput(id, o.mqtt, { maxPulseMs });
      case "serial":
        return new SerialActuatorOutput({
          id,
          actuator: o.actuator,
          client: this.framedClient(o.link),
          maxPulseMs,
          timers: this.timers,
        });
      case "gpio":
        return GpioOutputPin.open(
          this.gpioBackend(),
          { id, line: o.line, chip: o.chip ?? gpio.chip, activeLow: o.activeLow, initial: o.initial, maxPulseMs },
          { timers: this.timers },
        );
    }
  }

  private async openInputs(): Promise<void> {
    const { config } = this.options;
    for (const [id, i] of Object.entries(config.inputs)) {
      const pin = await GpioInputPin.open(
        this.gpioBackend(),
        {
          id,
          line: i.line,
          chip: i.chip ?? config.gpio.chip,
          activeLow: i.activeLow,
          edge: i.edge,
          debounceMs: i.debounceMs,
        },
        {
          timers: this.timers,
          onListenerError: (err) => this.logger.error("input listener threw", { input: id, error: describeError(err) }),
        },
      );
      this.inputMap.set(id, pin);
      this.subscriptions.push(pin.on("edge", (e) => this.events.emit("edge", e)));
    }
  }

  private buildChannels(): void {
    for (const [id, c] of Object.entries(this.options.config.channels))
      this.channelMap.set(
        id,
        new TrackedChannel(this.buildChannel(id, c), c.source === "serial" ? c.link : undefined, (change) =>
          this.events.emit("quality", change),
        ),
      );
  }

  private buildChannel(id: string, c: ChannelConfig): SensorChannel {
    const base = { id, kind: c.kind, unit: c.unit, intervalMs: c.intervalMs, timers: this.timers };
    const stale = c.staleAfterMs !== undefined ? { staleAfterMs: c.staleAfterMs } : {};
    switch (c.source) {
      case "mqtt":
        return this.hub().addChannel({ ...base, ...stale, mqtt: c.mqtt });
      case "gpio":
        return new DigitalInputChannel({ ...base, input: this.get(this.inputMap, c.input, "input") });
      case "serial": {
        const entry = this.get(this.linkEntries, c.link, "link");
        if (entry.protocol === "line")
          return new LineSensorChannel({ ...base, ...stale, sensor: c.sensor, values: entry.values });
        return new SerialSensorChannel({
          ...base,
          ...stale,
          sensor: c.sensor,
          client: entry.client,
          ...(c.stuckAfterMs !== undefined ? { stuckAfterMs: c.stuckAfterMs } : {}),
        });
      }
    }
  }

  private onUnplug(linkId: string, e: BoardEvents["unplug"]): void {
    this.events.emit("unplug", e);
    // Channels of a device that went away are in error now, not at their next sample.
    for (const ch of this.channelMap.values()) if (ch.linkId === linkId) ch.markError(e.error);
  }
}

/** Wraps a channel to notice quality changes, whoever calls read(). */
class TrackedChannel implements SensorChannel {
  quality: Quality | undefined;

  constructor(
    private readonly inner: SensorChannel,
    readonly linkId: string | undefined,
    private readonly onChange: (c: QualityChange) => void,
  ) {}

  get id() {
    return this.inner.id;
  }
  get kind() {
    return this.inner.kind;
  }
  get unit() {
    return this.inner.unit;
  }
  get intervalMs() {
    return this.inner.intervalMs;
  }

  async read(): Promise<Reading> {
    const r = await this.inner.read();
    this.set(r.quality, r.error);
    return r;
  }

  markError(error: DriverError): void {
    this.set(
      "error",
      new DriverError(error.code as never, error.message, { ...error.context, device: error.device, channel: this.id }),
    );
  }

  private set(quality: Quality, error: DriverError | undefined): void {
    if (quality === this.quality) return;
    const previous = this.quality;
    this.quality = quality;
    this.onChange({ channelId: this.id, quality, previous, ...(error ? { error } : {}) });
  }
}
