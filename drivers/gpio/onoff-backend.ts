/**
 * GPIO through onoff (Linux sysfs). Chosen because it installs everywhere (its only native part,
 * epoll, builds on x86 CI and reports `Gpio.accessible === false` there) and needs no daemon.
 * Limits (docs/hardware.md): sysfs is deprecated upstream in favour of the character device, and
 * since kernel 6.6 line numbers are offset by the chip base; lines are resolved through
 * drivers/gpio/sysfs.ts instead of assumed.
 */
import { createRequire } from "node:module";
import type { Gpio as OnoffGpio } from "onoff";
import { DriverError } from "../types.js";
import type { Bit, GpioBackend, GpioLine, GpioLineRequest } from "./backend.js";
import { listSysfsChips, resolveLine, SYSFS_GPIO_ROOT, type SysfsChip } from "./sysfs.js";

/** The slice of onoff's Gpio class we use; injectable so the backend's own logic is unit-testable. */
export interface OnoffGpioLike {
  read(): Promise<Bit>;
  write(value: Bit): Promise<void>;
  watch(cb: (err: Error | null | undefined, value: Bit) => void): void;
  unwatch(cb?: (err: Error | null | undefined, value: Bit) => void): void;
  unexport(): void;
}
export type OnoffGpioFactory = (
  sysfsNumber: number,
  direction: "in" | "out" | "high" | "low",
  edge: "none" | "rising" | "falling" | "both",
) => OnoffGpioLike;

export interface OnoffBackendOptions {
  /** Where gpiochip directories are read from (tests point this at a fake tree). */
  sysfsRoot?: string;
  /** Default chip label when a request names none (board.gpio.chip). */
  defaultChip?: string;
  gpioFactory?: OnoffGpioFactory;
  accessible?: boolean;
  /** Called when onoff reports a watch error; the line keeps going. */
  onWatchError?: (err: DriverError) => void;
}

/**
 * onoff is loaded lazily: its native epoll addon is built at install time, and a device where
 * that build failed must still run a board without GPIO (serial only) instead of dying at import.
 */
let loaded: { Gpio?: typeof OnoffGpio; error?: Error } | undefined;
function loadOnoff(): { Gpio?: typeof OnoffGpio; error?: Error } {
  if (!loaded) {
    try {
      loaded = { Gpio: (createRequire(import.meta.url)("onoff") as { Gpio: typeof OnoffGpio }).Gpio };
    } catch (err) {
      loaded = { error: err as Error };
    }
  }
  return loaded;
}

export class OnoffGpioBackend implements GpioBackend {
  readonly name = "onoff";
  readonly accessible: boolean;
  /** Why GPIO is not accessible, for logs and skipped tests. */
  readonly unavailableReason: string | undefined;
  private chips: SysfsChip[] | undefined;
  private readonly open_ = new Set<number>();

  constructor(private readonly options: OnoffBackendOptions = {}) {
    const onoff = options.gpioFactory ? {} : loadOnoff();
    this.accessible = options.accessible ?? onoff.Gpio?.accessible === true;
    this.unavailableReason = this.accessible
      ? undefined
      : onoff.error
        ? `onoff failed to load: ${onoff.error.message}`
        : "onoff Gpio.accessible is false: no writable /sys/class/gpio";
  }

  async open(request: GpioLineRequest): Promise<GpioLine> {
    if (!this.accessible)
      throw new DriverError(
        "gpio_unavailable",
        "GPIO is not accessible on this machine (onoff: no writable /sys/class/gpio)",
        {
          device: "gpio",
          channel: String(request.line),
        },
      );
    this.chips ??= await listSysfsChips(this.options.sysfsRoot ?? SYSFS_GPIO_ROOT);
    const resolved = resolveLine(this.chips, request.line, request.chip ?? this.options.defaultChip);
    const device = `gpio:${resolved.chip.label}/${resolved.line}`;
    if (this.open_.has(resolved.sysfsNumber))
      throw new DriverError("gpio_line_busy", `${device} is already open`, { device, channel: String(request.line) });
    const direction = request.direction === "in" ? "in" : request.initial === 1 ? "high" : "low";
    const Gpio = loadOnoff().Gpio;
    const factory: OnoffGpioFactory | undefined =
      this.options.gpioFactory ?? (Gpio ? (n, d, e) => new Gpio(n, d, e) as OnoffGpioLike : undefined);
    if (!factory) throw new DriverError("gpio_unavailable", `${this.unavailableReason}`, { device: "gpio" });
    let gpio: OnoffGpioLike;
    try {
      gpio = factory(resolved.sysfsNumber, direction, request.direction === "in" ? (request.edge ?? "both") : "none");
    } catch (err) {
      throw new DriverError(
        "gpio_io",
        `cannot export ${device} (sysfs ${resolved.sysfsNumber}): ${(err as Error).message}`,
        { device, channel: String(request.line), sysfsNumber: resolved.sysfsNumber },
        { cause: err },
      );
    }
    this.open_.add(resolved.sysfsNumber);
    return new OnoffLine(
      device,
      request.direction,
      gpio,
      () => this.open_.delete(resolved.sysfsNumber),
      this.options.onWatchError,
    );
  }
}

class OnoffLine implements GpioLine {
  private closed = false;

  constructor(
    readonly device: string,
    readonly direction: "in" | "out",
    private readonly gpio: OnoffGpioLike,
    private readonly release: () => void,
    private readonly onWatchError: ((err: DriverError) => void) | undefined,
  ) {}

  private check(): void {
    if (this.closed) throw new DriverError("gpio_unexported", `${this.device} is closed`, { device: this.device });
  }

  async read(): Promise<Bit> {
    this.check();
    try {
      return await this.gpio.read();
    } catch (err) {
      throw new DriverError(
        "gpio_io",
        `read ${this.device}: ${(err as Error).message}`,
        { device: this.device },
        { cause: err },
      );
    }
  }

  async write(value: Bit): Promise<void> {
    this.check();
    if (this.direction !== "out")
      throw new DriverError("gpio_wrong_direction", `${this.device} is an input`, { device: this.device });
    try {
      await this.gpio.write(value);
    } catch (err) {
      throw new DriverError(
        "gpio_io",
        `write ${this.device}: ${(err as Error).message}`,
        { device: this.device },
        { cause: err },
      );
    }
  }

  watch(listener: (value: Bit) => void): () => void {
    this.check();
    const cb = (err: Error | null | undefined, value: Bit) => {
      if (err)
        this.onWatchError?.(
          new DriverError("gpio_io", `watch ${this.device}: ${err.message}`, { device: this.device }, { cause: err }),
        );
      else listener(value);
    };
    this.gpio.watch(cb);
    return () => this.gpio.unwatch(cb);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.release();
    this.gpio.unwatch();
    this.gpio.unexport();
  }
}
