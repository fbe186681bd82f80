/**
 * FramedSerialLink: a serial device speaking the framed protocol (docs/serial-protocol.md). The
 * PortSession below it owns the port and the unplug/reopen cycle; this class adds the
 * FrameParser (one for the link's life, so its noise counters survive replugs) and frame writes.
 */
import type { BackoffOptions } from "../../kernel/backoff.js";
import type { Logger } from "../../kernel/log.js";
import type { Timers } from "../../kernel/timers.js";
import { TypedEvents, type Unsubscribe } from "../events.js";
import type { Frame, SerialLink, SerialLinkEvents, SerialLinkState, SerialSettings, SerialStats } from "../types.js";
import type { SerialBackend } from "./backend.js";
import { encodeFrame } from "./codec.js";
import { FrameParser } from "./parsers/frame.js";
import { PortSession } from "./port-session.js";

export { DEFAULT_REOPEN } from "./port-session.js";

export interface FramedSerialLinkOptions {
  id: string;
  path: string;
  backend: SerialBackend;
  settings?: Partial<SerialSettings>;
  /** Largest payload in either direction (the parser's maxLength). */
  maxFrameBytes?: number;
  frameTimeoutMs?: number;
  reopen?: BackoffOptions;
  timers?: Timers;
  logger?: Logger;
  random?: () => number;
}

export class FramedSerialLink implements SerialLink {
  readonly protocol = "framed" as const;
  readonly id: string;
  readonly path: string;
  private readonly session: PortSession;
  private readonly parser: FrameParser;
  private readonly frames = new TypedEvents<{ frame: Frame }>();
  private framesOut = 0;

  constructor(private readonly options: FramedSerialLinkOptions) {
    this.id = options.id;
    this.path = options.path;
    this.session = new PortSession(options);
    this.parser = new FrameParser({
      maxLength: options.maxFrameBytes ?? 1024,
      frameTimeoutMs: options.frameTimeoutMs ?? 100,
      ...(options.timers ? { timers: options.timers } : {}),
    });
    this.parser.on("data", (frame: Frame) => this.frames.emit("frame", frame));
    this.session.on("data", (chunk) => this.parser.write(chunk));
    this.session.on("detach", () => this.parser.discardBuffered());
  }

  get state(): SerialLinkState {
    return this.session.state;
  }

  get settings(): SerialSettings {
    return this.session.settings;
  }

  get device(): string {
    return this.session.device;
  }

  on<K extends keyof SerialLinkEvents>(event: K, listener: (payload: SerialLinkEvents[K]) => void): Unsubscribe {
    if (event === "frame") return this.frames.on("frame", listener as (f: Frame) => void);
    return this.session.on(event as Exclude<K, "frame">, listener as never);
  }

  open(settings?: Partial<SerialSettings>): Promise<void> {
    return this.session.open(settings);
  }

  /** Opens if it can, else reports unplugged and retries with backoff (see PortSession.start). */
  start(): Promise<void> {
    return this.session.start();
  }

  close(): Promise<void> {
    return this.session.close();
  }

  async writeFrame(frame: Frame): Promise<void> {
    if (this.session.state !== "open")
      throw this.session.error(
        this.session.state === "unplugged" ? "serial_disconnected" : "serial_not_open",
        `${this.path} is ${this.session.state}`,
      );
    await this.session.write(encodeFrame(frame, this.options.maxFrameBytes ?? 1024));
    this.framesOut++;
  }

  actualBaudRate(): Promise<number> {
    return this.session.actualBaudRate();
  }

  stats(): SerialStats {
    const p = this.parser.counters;
    return {
      framesIn: p.framesIn,
      framesOut: this.framesOut,
      garbageBytes: p.garbageBytes,
      badCrc: p.badCrc,
      partialFrames: p.partialFrames,
      oversizeFrames: p.oversizeFrames,
      bytesIn: p.bytesIn,
      bytesOut: this.session.counters.bytesOut,
      unplugs: this.session.counters.unplugs,
      reopens: this.session.counters.reopens,
    };
  }
}
