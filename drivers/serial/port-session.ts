/**
 * PortSession: one serial device's life, whatever protocol runs on it. It owns the port handle
 * and the unplug/replug cycle: when the port dies (EIO, EOF, the USB adapter pulled) it reports
 * `unplug`, then retries opening with exponential backoff and full jitter until the device is
 * back (`replug`). Protocol links (framed, line) sit on top and only see bytes and these events.
 */
import { Backoff, type BackoffOptions } from "../../kernel/backoff.js";
import { describeError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { realTimers, type TimerHandle, type Timers } from "../../kernel/timers.js";
import { TypedEvents, type Unsubscribe } from "../events.js";
import {
  DEFAULT_SERIAL_SETTINGS,
  DriverError,
  type DriverErrorCode,
  type SerialLinkState,
  type SerialSettings,
} from "../types.js";
import type { SerialBackend, SerialPortHandle } from "./backend.js";

export interface PortSessionOptions {
  id: string;
  path: string;
  backend: SerialBackend;
  settings?: Partial<SerialSettings>;
  reopen?: BackoffOptions;
  timers?: Timers;
  logger?: Logger;
  random?: () => number;
}

export interface PortSessionEvents {
  open: { linkId: string; path: string };
  data: Buffer;
  /** The port ended without close(): protocol layers drop half-received input here. */
  detach: undefined;
  unplug: { linkId: string; path: string; error: DriverError };
  replug: { linkId: string; path: string; attempts: number };
  close: { linkId: string; path: string };
}

export const DEFAULT_REOPEN: BackoffOptions = { initialDelayMs: 500, maxDelayMs: 30_000, factor: 2, minDelayMs: 50 };

export class PortSession {
  readonly id: string;
  readonly path: string;
  readonly events: TypedEvents<PortSessionEvents>;
  readonly counters = { bytesOut: 0, unplugs: 0, reopens: 0 };
  private currentSettings: SerialSettings;
  private _state: SerialLinkState = "closed";
  private handle: SerialPortHandle | undefined;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly backoff: Backoff;
  private reopenTimer: TimerHandle | undefined;
  private reopenAttempts = 0;

  constructor(private readonly options: PortSessionOptions) {
    this.id = options.id;
    this.path = options.path;
    this.currentSettings = { ...DEFAULT_SERIAL_SETTINGS, ...options.settings };
    this.timers = options.timers ?? realTimers;
    this.logger = (options.logger ?? silentLogger).child({ component: "serial", link: options.id });
    this.backoff = new Backoff(options.reopen ?? DEFAULT_REOPEN, options.random);
    this.events = new TypedEvents((err, event) =>
      this.logger.error("serial link listener threw", { event: String(event), error: describeError(err) }),
    );
  }

  get state(): SerialLinkState {
    return this._state;
  }

  get settings(): SerialSettings {
    return { ...this.currentSettings };
  }

  get device(): string {
    return `serial:${this.id}`;
  }

  on<K extends keyof PortSessionEvents>(event: K, listener: (payload: PortSessionEvents[K]) => void): Unsubscribe {
    return this.events.on(event, listener);
  }

  /** Opens now or rejects with serial_open_failed. While unplugged, this is an immediate retry. */
  async open(settings?: Partial<SerialSettings>): Promise<void> {
    if (this._state === "open" || this._state === "opening") return;
    if (settings) this.currentSettings = { ...this.currentSettings, ...settings };
    if (this._state === "unplugged") {
      this.reopenTimer?.cancel();
      this.reopenTimer = undefined;
      await this.tryReopen(true);
      return;
    }
    this._state = "opening";
    try {
      await this.attach();
    } catch (err) {
      this._state = "closed";
      throw err;
    }
    this.events.emit("open", { linkId: this.id, path: this.path });
  }

  /**
   * Opens if it can; if the device is absent, reports it as unplugged and keeps retrying with
   * backoff. For start-up, where a missing device must not stop the agent.
   */
  async start(): Promise<void> {
    try {
      await this.open();
    } catch (err) {
      const error = err instanceof DriverError ? err : this.error("serial_open_failed", String(err), err);
      this._state = "unplugged";
      this.counters.unplugs++;
      this.logger.warn("serial device absent at start; will retry", { path: this.path, error: describeError(error) });
      this.events.emit("unplug", { linkId: this.id, path: this.path, error });
      this.scheduleReopen();
    }
  }

  async close(): Promise<void> {
    this.reopenTimer?.cancel();
    this.reopenTimer = undefined;
    const wasOpen = this._state !== "closed";
    this._state = "closed";
    const handle = this.handle;
    this.handle = undefined;
    this.events.emit("detach", undefined);
    if (handle) await handle.close();
    if (wasOpen) this.events.emit("close", { linkId: this.id, path: this.path });
  }

  async write(bytes: Buffer): Promise<void> {
    const handle = this.handle;
    if (this._state !== "open" || !handle)
      throw this.error(
        this._state === "unplugged" ? "serial_disconnected" : "serial_not_open",
        `${this.path} is ${this._state}`,
      );
    try {
      await handle.write(bytes);
    } catch (err) {
      throw this.error("serial_write_failed", `write to ${this.path} failed: ${(err as Error).message}`, err);
    }
    this.counters.bytesOut += bytes.length;
  }

  async actualBaudRate(): Promise<number> {
    if (!this.handle) throw this.error("serial_not_open", `${this.path} is ${this._state}`);
    return this.handle.getBaudRate();
  }

  error(code: DriverErrorCode, message: string, cause?: unknown): DriverError {
    return new DriverError(
      code,
      message,
      { device: this.device, path: this.path },
      cause === undefined ? undefined : { cause },
    );
  }

  private async attach(): Promise<void> {
    let handle: SerialPortHandle;
    try {
      handle = await this.options.backend.open(this.path, this.currentSettings);
    } catch (err) {
      throw this.error("serial_open_failed", `cannot open ${this.path}: ${(err as Error).message}`, err);
    }
    if (this._state === "closed") {
      // close() ran while the open was in flight.
      await handle.close();
      throw this.error("serial_not_open", `${this.path} was closed while opening`);
    }
    this.handle = handle;
    this._state = "open";
    handle.onData((chunk) => {
      if (this.handle === handle) this.events.emit("data", chunk);
    });
    handle.onClosed((error) => {
      if (this.handle !== handle) return;
      this.handle = undefined;
      this.onUnplug(error ?? new Error("port closed by the device"));
    });
  }

  private onUnplug(cause: Error): void {
    if (this._state === "closed") return;
    this._state = "unplugged";
    this.counters.unplugs++;
    this.events.emit("detach", undefined);
    const error = this.error("serial_disconnected", `${this.path} went away: ${cause.message}`, cause);
    this.logger.warn("serial device unplugged", { path: this.path, error: describeError(error) });
    this.events.emit("unplug", { linkId: this.id, path: this.path, error });
    this.backoff.reset();
    this.reopenAttempts = 0;
    this.scheduleReopen();
  }

  private scheduleReopen(): void {
    this.reopenTimer?.cancel();
    const delay = this.backoff.next();
    this.reopenTimer = this.timers.setTimeout(() => {
      this.reopenTimer = undefined;
      void this.tryReopen(false);
    }, delay);
  }

  private async tryReopen(rethrow: boolean): Promise<void> {
    if (this._state !== "unplugged") return;
    this.reopenAttempts++;
    try {
      await this.attach();
    } catch (err) {
      if (this._state === "unplugged") {
        this.logger.debug("serial reopen failed", {
          path: this.path,
          attempt: this.reopenAttempts,
          error: describeError(err),
        });
        this.scheduleReopen();
      }
      if (rethrow) throw err;
      return;
    }
    this.counters.reopens++;
    this.backoff.reset();
    const attempts = this.reopenAttempts;
    this.reopenAttempts = 0;
    this.logger.info("serial device back", { path: this.path, attempts });
    this.events.emit("replug", { linkId: this.id, path: this.path, attempts });
  }
}
