/**
 * McuClient: request/response over a framed link. Each request gets a free 8-bit sequence number
 * and a timeout; at most maxInFlight wait at once (more are refused at once with serial_busy,
 * rather than queued without bound). An unplug fails every waiting request with
 * serial_disconnected. A response nobody waits for (late, or invented by the device) is counted
 * and dropped.
 */
import { realTimers, type TimerHandle, type Timers } from "../../kernel/timers.js";
import type { Unsubscribe } from "../events.js";
import { DriverError, type DriverErrorCode, type Frame, type RequestStats, type SerialLink } from "../types.js";
import {
  type DeviceInventory,
  decodeError,
  decodeList,
  decodeMilli,
  decodeSensorValue,
  encodeName,
  encodeSet,
  isResponse,
  MSG,
  REMOTE_ERROR,
  RESPONSE_BIT,
  type SensorValue,
} from "./codec.js";

export interface McuClientOptions {
  link: SerialLink;
  requestTimeoutMs?: number;
  maxInFlight?: number;
  timers?: Timers;
}

interface Pending {
  type: number;
  resolve: (frame: Frame) => void;
  reject: (err: DriverError) => void;
  timer: TimerHandle;
}

export class McuClient {
  private readonly link: SerialLink;
  private readonly timers: Timers;
  private readonly pending = new Map<number, Pending>();
  private nextSeq = 1;
  private subscriptions: Unsubscribe[] = [];
  private readonly counters: RequestStats = {
    requests: 0,
    responses: 0,
    timeouts: 0,
    busy: 0,
    remoteErrors: 0,
    unmatchedResponses: 0,
  };

  constructor(private readonly options: McuClientOptions) {
    this.link = options.link;
    this.timers = options.timers ?? realTimers;
  }

  get device(): string {
    return `serial:${this.link.id}`;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  start(): void {
    if (this.subscriptions.length > 0) return;
    this.subscriptions = [
      this.link.on("frame", (f) => this.onFrame(f)),
      this.link.on("unplug", ({ error }) => this.failAll(error)),
      this.link.on("close", () => this.failAll(this.error("serial_not_open", `${this.link.path} was closed`))),
    ];
  }

  stop(): void {
    for (const off of this.subscriptions) off();
    this.subscriptions = [];
    this.failAll(this.error("serial_not_open", "client stopped"));
  }

  stats(): RequestStats {
    return { ...this.counters };
  }

  /** Sends `type` with `payload` and resolves with the matching response frame. */
  request(type: number, payload: Buffer = Buffer.alloc(0), timeoutMs?: number): Promise<Frame> {
    const max = this.options.maxInFlight ?? 8;
    if (this.pending.size >= max) {
      this.counters.busy++;
      return Promise.reject(this.error("serial_busy", `${max} requests already waiting on ${this.link.path}`));
    }
    if (this.subscriptions.length === 0)
      return Promise.reject(this.error("driver_not_started", "McuClient.start() was not called"));
    const seq = this.allocateSeq();
    const timeout = timeoutMs ?? this.options.requestTimeoutMs ?? 1000;
    this.counters.requests++;
    return new Promise<Frame>((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        if (this.pending.get(seq)?.timer !== timer) return;
        this.pending.delete(seq);
        this.counters.timeouts++;
        reject(this.error("serial_timeout", `no answer to ${requestName(type)} within ${timeout} ms`, { seq, type }));
      }, timeout);
      this.pending.set(seq, { type, resolve, reject, timer });
      this.link.writeFrame({ type, seq, payload }).catch((err: unknown) => {
        const p = this.pending.get(seq);
        if (p?.timer !== timer) return;
        timer.cancel();
        this.pending.delete(seq);
        reject(err instanceof DriverError ? err : this.error("serial_write_failed", String(err)));
      });
    });
  }

  async ping(data: Buffer = Buffer.from("ping")): Promise<Buffer> {
    return (await this.request(MSG.PING, data)).payload;
  }

  async version(): Promise<string> {
    return (await this.request(MSG.VERSION)).payload.toString("utf8");
  }

  async inventory(): Promise<DeviceInventory> {
    const f = await this.request(MSG.LIST);
    return this.decode(() => decodeList(f.payload));
  }

  async readSensor(name: string, channel?: string): Promise<SensorValue> {
    try {
      const f = await this.request(MSG.READ, encodeName(name));
      return this.decode(() => decodeSensorValue(f.payload));
    } catch (err) {
      throw this.withChannel(err, channel ?? name);
    }
  }

  /** Sets an actuator and resolves with the value the device applied. */
  async setActuator(name: string, value: number, channel?: string): Promise<number> {
    try {
      const f = await this.request(MSG.SET, encodeSet(name, value));
      return this.decode(() => decodeMilli(f.payload));
    } catch (err) {
      throw this.withChannel(err, channel ?? name);
    }
  }

  async getActuator(name: string, channel?: string): Promise<number> {
    try {
      const f = await this.request(MSG.GET, encodeName(name));
      return this.decode(() => decodeMilli(f.payload));
    } catch (err) {
      throw this.withChannel(err, channel ?? name);
    }
  }

  // ---- internals --------------------------------------------------------------------------

  private decode<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw err instanceof DriverError
        ? new DriverError(err.code as DriverErrorCode, err.message, { ...err.context, device: this.device })
        : err;
    }
  }

  private withChannel(err: unknown, channel: string): unknown {
    if (err instanceof DriverError && err.channel === undefined)
      return new DriverError(
        err.code as DriverErrorCode,
        err.message,
        { ...err.context, device: this.device, channel },
        { cause: err.cause },
      );
    return err;
  }

  private allocateSeq(): number {
    // 255 usable numbers (0 is reserved for unsolicited frames) and maxInFlight <= 255: always finds one.
    for (let i = 0; i < 255; i++) {
      const seq = this.nextSeq;
      this.nextSeq = this.nextSeq >= 255 ? 1 : this.nextSeq + 1;
      if (!this.pending.has(seq)) return seq;
    }
    throw this.error("serial_busy", "no free sequence number");
  }

  private onFrame(frame: Frame): void {
    if (!isResponse(frame.type)) return;
    const p = this.pending.get(frame.seq);
    if (!p) {
      this.counters.unmatchedResponses++;
      return;
    }
    this.pending.delete(frame.seq);
    p.timer.cancel();
    this.counters.responses++;
    if (frame.type === MSG.ERROR) {
      this.counters.remoteErrors++;
      let remote: { code: number; message: string };
      try {
        remote = decodeError(frame.payload);
      } catch {
        remote = { code: 0, message: "(malformed error payload)" };
      }
      const code: DriverErrorCode = remote.code === REMOTE_ERROR.SENSOR_FAULT ? "sensor_fault" : "serial_remote_error";
      p.reject(
        this.error(code, `device refused request 0x${p.type.toString(16)}: ${remote.message}`, {
          remoteCode: remote.code,
        }),
      );
      return;
    }
    if (frame.type !== (p.type | RESPONSE_BIT)) {
      p.reject(
        this.error(
          "serial_bad_response",
          `response type 0x${frame.type.toString(16)} to request 0x${p.type.toString(16)}`,
        ),
      );
      return;
    }
    p.resolve(frame);
  }

  private failAll(err: DriverError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      p.timer.cancel();
      p.reject(err);
    }
  }

  private error(code: DriverErrorCode, message: string, context: Record<string, unknown> = {}): DriverError {
    return new DriverError(code, message, { ...context, device: this.device, path: this.link.path });
  }
}

const REQUEST_NAMES = new Map<number, string>(Object.entries(MSG).map(([name, code]) => [code, name]));

/** "SET (0x20)": how a person reading a timeout knows which request went unanswered. */
function requestName(type: number): string {
  const hex = `0x${type.toString(16).padStart(2, "0")}`;
  const name = REQUEST_NAMES.get(type);
  return name ? `${name} (${hex})` : `request ${hex}`;
}
