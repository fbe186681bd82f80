/**
 * GPIO through onoff (Linux sysfs). Chosen because it needs no daemon and reports
 * `Gpio.accessible === false` where there is no GPIO. Its one native part, epoll, has no prebuilt
 * binary: it is compiled at install time, so onoff is an *optional* dependency (package.json): an
 * install without a C++ compiler (a laptop, CI, a Pi without build tools) skips it and everything
 * but real GPIO still runs; a board that asks for real GPIO then gets a clear "not installed" with
 * the fix (docs/deployment.md).
 * Limits (docs/hardware.md): sysfs is deprecated upstream in favour of the character device, and
 * since kernel 6.6 line numbers are offset by the chip base; lines are resolved through
 * drivers/gpio/sysfs.ts instead of assumed.
 */
import { createRequire } from "node:module";
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

/** The slice of onoff's module we use (declared here: the package may be absent at typecheck too). */
export interface OnoffModule {
  Gpio: {
    new (
      sysfsNumber: number,
      direction: "in" | "out" | "high" | "low",
      edge: "none" | "rising" | "falling" | "both",
    ): OnoffGpioLike;
    readonly accessible: boolean;
  };
}

/** Whether onoff can be used on this install, and if not, why and what to do about it. */
export type OnoffAvailability =
  | { state: "loaded"; module: OnoffModule }
  | { state: "not-installed"; reason: string }
  | { state: "broken"; reason: string };

export const ONOFF_NOT_INSTALLED =
  "onoff is not installed: it is an optional dependency whose native addon (epoll) is compiled at " +
  "install time, and this install had no C++ compiler. To drive GPIO, install make, g++ and python3 " +
  "(apt-get install make g++ python3) and run `npm ci --omit=dev` again in the agent's directory " +
  "(docs/deployment.md)";

/** Classifies a failed require("onoff"): absent (skipped at install) or present but unloadable. */
export function classifyOnoffLoadError(err: unknown): OnoffAvailability {
  const e = err as NodeJS.ErrnoException;
  // MODULE_NOT_FOUND for onoff itself means it was skipped; for anything else (epoll's .node file,
  // a dependency) the package is there but its build is missing or broken.
  if (e?.code === "MODULE_NOT_FOUND" && /['"]onoff['"]/.test(e.message ?? "") && !/epoll/.test(e.message ?? ""))
    return { state: "not-installed", reason: ONOFF_NOT_INSTALLED };
  return {
    state: "broken",
    reason:
      `onoff is installed but failed to load (${e?.message ?? String(err)}); after a Node.js upgrade ` +
      "rebuild its addon with `npm rebuild epoll` (needs make, g++ and python3)",
  };
}

export interface OnoffBackendOptions {
  /** Where gpiochip directories are read from (tests point this at a fake tree). */
  sysfsRoot?: string;
  /** Default chip label when a request names none (board.gpio.chip). */
  defaultChip?: string;
  gpioFactory?: OnoffGpioFactory;
  accessible?: boolean;
  /** Called when onoff reports a watch error; the line keeps going. */
  onWatchError?: (err: DriverError) => void;
  /** Where onoff comes from (tests); default: the installed package, loaded once. */
  availability?: OnoffAvailability;
}

/**
 * onoff is loaded lazily, once: a device without it (skipped at install, or broken by a Node.js
 * upgrade) must still run a board without GPIO (serial, MQTT) instead of dying at import.
 */
let loaded: OnoffAvailability | undefined;
export function onoffAvailability(): OnoffAvailability {
  if (!loaded) {
    try {
      loaded = { state: "loaded", module: createRequire(import.meta.url)("onoff") as OnoffModule };
    } catch (err) {
      loaded = classifyOnoffLoadError(err);
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

  private readonly onoff: OnoffAvailability | undefined;

  constructor(private readonly options: OnoffBackendOptions = {}) {
    this.onoff = options.gpioFactory ? undefined : (options.availability ?? onoffAvailability());
    const onoff = this.onoff;
    this.accessible = options.accessible ?? (onoff?.state === "loaded" && onoff.module.Gpio.accessible === true);
    this.unavailableReason = this.accessible
      ? undefined
      : onoff && onoff.state !== "loaded"
        ? onoff.reason
        : "onoff Gpio.accessible is false: no writable /sys/class/gpio";
  }

  async open(request: GpioLineRequest): Promise<GpioLine> {
    if (!this.accessible)
      throw new DriverError("gpio_unavailable", `GPIO is not usable here: ${this.unavailableReason}`, {
        device: "gpio",
        channel: String(request.line),
      });
    this.chips ??= await listSysfsChips(this.options.sysfsRoot ?? SYSFS_GPIO_ROOT);
    const resolved = resolveLine(this.chips, request.line, request.chip ?? this.options.defaultChip);
    const device = `gpio:${resolved.chip.label}/${resolved.line}`;
    if (this.open_.has(resolved.sysfsNumber))
      throw new DriverError("gpio_line_busy", `${device} is already open`, { device, channel: String(request.line) });
    const direction = request.direction === "in" ? "in" : request.initial === 1 ? "high" : "low";
    const Gpio = this.onoff?.state === "loaded" ? this.onoff.module.Gpio : undefined;
    const factory: OnoffGpioFactory | undefined =
      this.options.gpioFactory ?? (Gpio ? (n, d, e) => new Gpio(n, d, e) : undefined);
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
