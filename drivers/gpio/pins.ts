/**
 * DigitalOutput and DigitalInput on top of any GpioBackend. Debounce and activeLow live here, once,
 * on injected timers, so every backend (onoff, sim, libgpiod) behaves the same and the timing logic
 * is tested on fake time; pulses follow the HAL's one rule (drivers/pulse.ts).
 */
import { realTimers, type TimerHandle, type Timers } from "../../kernel/timers.js";
import { TypedEvents, type Unsubscribe } from "../events.js";
import { Pulser } from "../pulse.js";
import {
  type DigitalInput,
  type DigitalInputEvents,
  type DigitalOutput,
  DriverError,
  type EdgeFilter,
  type PulseStarted,
} from "../types.js";
import type { Bit, GpioBackend, GpioLine } from "./backend.js";

export interface OutputPinOptions {
  id: string;
  line: number;
  chip?: string | undefined;
  activeLow?: boolean;
  /** Level (logical, after activeLow) set when the pin is opened. */
  initial?: boolean;
  /** Longest pulse accepted; a bound so a typo cannot hold a relay on for a day. */
  maxPulseMs?: number;
}

export interface InputPinOptions {
  id: string;
  line: number;
  chip?: string | undefined;
  activeLow?: boolean;
  edge?: EdgeFilter | "none";
  /** A level must hold this long before it counts; every raw change restarts the wait. 0 disables. */
  debounceMs?: number;
}

export interface PinDeps {
  timers?: Timers;
  onListenerError?: (err: unknown) => void;
}

const toBit = (v: boolean, activeLow: boolean): Bit => (v !== activeLow ? 1 : 0);
const fromBit = (b: Bit, activeLow: boolean): boolean => (b === 1) !== activeLow;

export class GpioOutputPin implements DigitalOutput {
  readonly id: string;
  private readonly pulser: Pulser;

  private constructor(
    private readonly line: GpioLine,
    private readonly options: OutputPinOptions,
    timers: Timers,
  ) {
    this.id = options.id;
    this.pulser = new Pulser(
      { id: options.id, device: line.device, drive: (v) => this.write(v) },
      options.maxPulseMs ?? 60_000,
      timers,
    );
  }

  static async open(backend: GpioBackend, options: OutputPinOptions, deps: PinDeps = {}): Promise<GpioOutputPin> {
    const line = await backend.open({
      line: options.line,
      chip: options.chip,
      direction: "out",
      initial: toBit(options.initial ?? false, options.activeLow ?? false),
      consumer: options.id,
    });
    return new GpioOutputPin(line, options, deps.timers ?? realTimers);
  }

  get device(): string {
    return this.line.device;
  }

  async set(value: boolean): Promise<void> {
    this.pulser.cancel();
    await this.write(value);
  }

  pulse(durationMs: number, value = true): Promise<PulseStarted> {
    return this.pulser.start(durationMs, value);
  }

  async read(): Promise<boolean> {
    return fromBit(await this.line.read(), this.options.activeLow ?? false);
  }

  /** A close() during a pulse wins: the restore is cancelled. */
  async close(): Promise<void> {
    this.pulser.cancel();
    await this.line.close();
  }

  private async write(value: boolean): Promise<void> {
    try {
      await this.line.write(toBit(value, this.options.activeLow ?? false));
    } catch (err) {
      if (err instanceof DriverError && err.channel === undefined)
        throw new DriverError(
          err.code as never,
          err.message,
          { ...err.context, device: err.device, channel: this.id },
          { cause: err },
        );
      throw err;
    }
  }
}

export class GpioInputPin implements DigitalInput {
  readonly id: string;
  readonly edgeFilter: EdgeFilter | "none";
  private readonly events: TypedEvents<DigitalInputEvents>;
  private stable = false;
  private lastRaw: Bit = 0;
  private settleTimer: TimerHandle | undefined;
  private unwatch: Unsubscribe | undefined;

  private constructor(
    private readonly line: GpioLine,
    private readonly options: InputPinOptions,
    private readonly timers: Timers,
    onListenerError: (err: unknown) => void,
  ) {
    this.id = options.id;
    this.edgeFilter = options.edge ?? "both";
    this.events = new TypedEvents((err) => onListenerError(err));
  }

  static async open(backend: GpioBackend, options: InputPinOptions, deps: PinDeps = {}): Promise<GpioInputPin> {
    const line = await backend.open({
      line: options.line,
      chip: options.chip,
      direction: "in",
      edge: (options.edge ?? "both") === "none" ? "none" : "both",
      consumer: options.id,
    });
    const pin = new GpioInputPin(line, options, deps.timers ?? realTimers, deps.onListenerError ?? (() => {}));
    try {
      pin.lastRaw = await line.read();
    } catch (err) {
      await line.close();
      throw err;
    }
    pin.stable = fromBit(pin.lastRaw, options.activeLow ?? false);
    // Debounce needs every raw change, whatever the filter; the filter applies to settled edges.
    if (pin.edgeFilter !== "none") pin.unwatch = line.watch((v) => pin.onRaw(v));
    return pin;
  }

  get device(): string {
    return this.line.device;
  }

  on<K extends keyof DigitalInputEvents>(event: K, listener: (payload: DigitalInputEvents[K]) => void): Unsubscribe {
    return this.events.on(event, listener);
  }

  async read(): Promise<boolean> {
    return fromBit(await this.line.read(), this.options.activeLow ?? false);
  }

  async close(): Promise<void> {
    this.settleTimer?.cancel();
    this.settleTimer = undefined;
    this.unwatch?.();
    this.unwatch = undefined;
    this.events.clear();
    await this.line.close();
  }

  private onRaw(value: Bit): void {
    this.lastRaw = value;
    const debounceMs = this.options.debounceMs ?? 0;
    this.settleTimer?.cancel();
    if (debounceMs <= 0) {
      this.settle();
      return;
    }
    this.settleTimer = this.timers.setTimeout(() => {
      this.settleTimer = undefined;
      this.settle();
    }, debounceMs);
  }

  private settle(): void {
    const level = fromBit(this.lastRaw, this.options.activeLow ?? false);
    if (level === this.stable) return;
    this.stable = level;
    const edge = level ? "rising" : "falling";
    if (this.edgeFilter === "both" || this.edgeFilter === edge)
      this.events.emit("edge", { inputId: this.id, edge, value: level, timestamp: this.timers.now() });
  }
}
