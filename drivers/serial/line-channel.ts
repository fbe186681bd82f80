/**
 * Sensor channels fed by a line-protocol device. LineValues keeps the latest value of each
 * configured key (and only those: the table cannot grow with what the device prints). A line is
 * tokens separated by spaces, commas or semicolons, each `key=number` or `key:number`; lines
 * starting with '#' are comments (boot banners). Quality: error while the device is unplugged or
 * before its first value; stale when the latest value is older than staleAfterMs.
 */
import { realTimers, type Timers } from "../../kernel/timers.js";
import type { Unsubscribe } from "../events.js";
import { DriverError, type Reading, type SensorChannel } from "../types.js";
import type { LineSerialLink } from "./line-link.js";

export class LineValues {
  private readonly latest = new Map<string, { value: number; at: number } | undefined>();
  private subscriptions: Unsubscribe[] = [];
  private readonly timers: Timers;

  constructor(
    readonly link: LineSerialLink,
    keys: Iterable<string>,
    timers: Timers = realTimers,
  ) {
    for (const k of keys) this.latest.set(k, undefined);
    this.timers = timers;
  }

  start(): void {
    if (this.subscriptions.length > 0) return;
    this.subscriptions = [
      this.link.on("line", (line) => this.onLine(line)),
      // Values from before an unplug must not pass for fresh ones after the replug.
      this.link.on("unplug", () => {
        for (const k of this.latest.keys()) this.latest.set(k, undefined);
      }),
    ];
  }

  stop(): void {
    for (const off of this.subscriptions) off();
    this.subscriptions = [];
  }

  get(key: string): { value: number; at: number } | undefined {
    return this.latest.get(key);
  }

  /** Exposed for tests; normally fed by the link's `line` events. */
  onLine(line: string): void {
    const text = line.trim();
    if (text === "" || text.startsWith("#")) return;
    const now = this.timers.now();
    for (const token of text.split(/[\s,;]+/)) {
      if (token === "") continue;
      const m = /^([^=:]+)[=:](.+)$/.exec(token);
      const value = m ? Number(m[2]) : Number.NaN;
      if (!m || !Number.isFinite(value)) {
        this.link.malformedTokens++;
        continue;
      }
      if (this.latest.has(m[1]!)) this.latest.set(m[1]!, { value, at: now });
    }
  }
}

export interface LineSensorChannelOptions {
  id: string;
  kind: string;
  unit: string;
  intervalMs: number;
  sensor: string;
  values: LineValues;
  /** Default: 3 × intervalMs. */
  staleAfterMs?: number;
  timers?: Timers;
}

export class LineSensorChannel implements SensorChannel {
  readonly id: string;
  readonly kind: string;
  readonly unit: string;
  readonly intervalMs: number;
  private readonly timers: Timers;

  constructor(private readonly options: LineSensorChannelOptions) {
    this.id = options.id;
    this.kind = options.kind;
    this.unit = options.unit;
    this.intervalMs = options.intervalMs;
    this.timers = options.timers ?? realTimers;
  }

  async read(): Promise<Reading> {
    const now = this.timers.now();
    const link = this.options.values.link;
    const base = { channelId: this.id, unit: this.unit };
    const where = { device: link.device, channel: this.id };
    if (link.state !== "open") {
      const code = link.state === "unplugged" ? "serial_disconnected" : "serial_not_open";
      return {
        ...base,
        value: null,
        timestamp: now,
        quality: "error",
        error: new DriverError(code, `${link.path} is ${link.state}`, where),
      };
    }
    const latest = this.options.values.get(this.options.sensor);
    if (!latest)
      return {
        ...base,
        value: null,
        timestamp: now,
        quality: "error",
        error: new DriverError(
          "sensor_fault",
          `no value for ${JSON.stringify(this.options.sensor)} received yet`,
          where,
        ),
      };
    const staleAfter = this.options.staleAfterMs ?? 3 * this.intervalMs;
    const age = now - latest.at;
    if (age > staleAfter)
      return {
        ...base,
        value: latest.value,
        timestamp: latest.at,
        quality: "stale",
        error: new DriverError("sensor_stale", `${this.id}: last value is ${age} ms old (limit ${staleAfter} ms)`, {
          ...where,
          ageMs: age,
        }),
      };
    return { ...base, value: latest.value, timestamp: latest.at, quality: "good" };
  }
}
