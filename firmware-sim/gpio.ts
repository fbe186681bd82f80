/**
 * A simulated GPIO controller implementing drivers/gpio GpioBackend. One instance per test or
 * per simulated board (no module-global registry). It keeps the rules of the real thing, so code
 * that works here does not fail on a Pi for a reason the sim hid: a line exists only below the
 * chip's ngpio, it can be opened once, writing an input throws, a closed (unexported) line throws.
 * Test hooks: drive() an input's level, bounce() a button, history() of an output's writes.
 */
import { realTimers, type Timers } from "../kernel/timers.js";
import type { Bit, GpioBackend, GpioDirection, GpioLine, GpioLineRequest } from "../drivers/gpio/backend.js";
import { DriverError } from "../drivers/types.js";

export interface SimChip {
  label: string;
  ngpio: number;
}

export interface SimGpioOptions {
  /** Default: one 54-line chip labelled like a Pi 4's header chip. */
  chips?: SimChip[];
  timers?: Timers;
}

export interface LevelChange {
  value: Bit;
  /** timers.now() when the level was set. */
  at: number;
}

interface SimLineState {
  chip: string;
  line: number;
  level: Bit;
  direction: GpioDirection | undefined;
  open: SimLine | undefined;
  history: LevelChange[];
}

const HISTORY_CAP = 10_000;

export class SimGpioBackend implements GpioBackend {
  readonly name = "sim";
  readonly accessible = true;
  readonly chips: readonly SimChip[];
  private readonly timers: Timers;
  private readonly lines = new Map<string, SimLineState>();

  constructor(options: SimGpioOptions = {}) {
    this.chips = options.chips ?? [{ label: "pinctrl-bcm2711", ngpio: 54 }];
    this.timers = options.timers ?? realTimers;
  }

  async open(request: GpioLineRequest): Promise<GpioLine> {
    const state = this.state(request.line, request.chip);
    const device = `gpio:${state.chip}/${state.line}`;
    if (state.open)
      throw new DriverError("gpio_line_busy", `${device} is already open`, { device, channel: String(request.line) });
    state.direction = request.direction;
    if (request.direction === "out") this.record(state, request.initial ?? 0);
    const line = new SimLine(device, request.direction, state, this);
    state.open = line;
    return line;
  }

  // ---- test hooks -------------------------------------------------------------------------

  /** Sets the electrical level seen on an input (a button, a sensor's data pin). */
  drive(line: number, value: Bit, chip?: string): void {
    const state = this.state(line, chip);
    if (state.direction === "out")
      throw new DriverError("gpio_wrong_direction", `gpio:${state.chip}/${line} is an output; drive() is for inputs`, {
        device: `gpio:${state.chip}/${line}`,
      });
    if (state.level === value) return;
    state.level = value;
    state.open?.notify(value);
  }

  /**
   * A mechanical press: `count` level toggles `intervalMs` apart, ending on `final`. With
   * FakeTimers the toggles happen as time is advanced; returns when all are scheduled.
   */
  bounce(line: number, final: Bit, opts: { count?: number; intervalMs?: number; chip?: string } = {}): void {
    const count = opts.count ?? 20;
    const interval = opts.intervalMs ?? 1;
    for (let i = 0; i < count; i++) {
      // Toggle so that the last toggle lands on `final`.
      const value: Bit = (count - 1 - i) % 2 === 0 ? final : final === 1 ? 0 : 1;
      if (i === 0) this.drive(line, value, opts.chip);
      else this.timers.setTimeout(() => this.drive(line, value, opts.chip), i * interval);
    }
  }

  /** Every level written to an output (initial level included), oldest first; capped at 10,000. */
  history(line: number, chip?: string): readonly LevelChange[] {
    return this.state(line, chip).history;
  }

  level(line: number, chip?: string): Bit {
    return this.state(line, chip).level;
  }

  isOpen(line: number, chip?: string): boolean {
    return this.state(line, chip).open !== undefined;
  }

  // ---- internals --------------------------------------------------------------------------

  /** @internal */
  record(state: SimLineState, value: Bit): void {
    state.level = value;
    state.history.push({ value, at: this.timers.now() });
    if (state.history.length > HISTORY_CAP) state.history.splice(0, state.history.length - HISTORY_CAP);
  }

  private state(line: number, chipLabel?: string): SimLineState {
    const chip = chipLabel === undefined ? this.chips[0] : this.chips.find((c) => c.label === chipLabel);
    if (!chip) {
      const known = this.chips.map((c) => c.label).join(", ");
      throw new DriverError("gpio_no_chip", `no GPIO chip labelled ${JSON.stringify(chipLabel)}; found: ${known}`, {
        device: "gpio",
        chip: chipLabel,
      });
    }
    if (!Number.isInteger(line) || line < 0 || line >= chip.ngpio)
      throw new DriverError("gpio_line_out_of_range", `line ${line} is outside ${chip.label} (0..${chip.ngpio - 1})`, {
        device: `gpio:${chip.label}`,
        channel: String(line),
      });
    const key = `${chip.label}/${line}`;
    let state = this.lines.get(key);
    if (!state) {
      state = { chip: chip.label, line, level: 0, direction: undefined, open: undefined, history: [] };
      this.lines.set(key, state);
    }
    return state;
  }
}

class SimLine implements GpioLine {
  private closed = false;
  private readonly watchers = new Set<(value: Bit) => void>();

  constructor(
    readonly device: string,
    readonly direction: GpioDirection,
    private readonly state: SimLineState,
    private readonly backend: SimGpioBackend,
  ) {}

  private check(): void {
    if (this.closed)
      throw new DriverError("gpio_unexported", `${this.device} is not exported (closed)`, { device: this.device });
  }

  async read(): Promise<Bit> {
    this.check();
    return this.state.level;
  }

  async write(value: Bit): Promise<void> {
    this.check();
    if (this.direction !== "out")
      throw new DriverError("gpio_wrong_direction", `${this.device} is an input`, { device: this.device });
    if (value !== 0 && value !== 1)
      throw new DriverError("driver_bad_argument", `${this.device}: level must be 0 or 1`, { device: this.device });
    this.backend.record(this.state, value);
  }

  watch(listener: (value: Bit) => void): () => void {
    this.check();
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watchers.clear();
    this.state.open = undefined;
  }

  /** @internal */
  notify(value: Bit): void {
    for (const w of [...this.watchers]) w(value);
  }
}
