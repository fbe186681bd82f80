/**
 * LineSerialLink: a serial device that prints text lines, e.g. an Arduino sketch doing
 * `Serial.println("temperature=21.5 humidity=40")`. Same PortSession (unplug/replug with backoff)
 * as the framed link; a bounded LineParser instead of frames. There is no checksum on this
 * protocol, so malformed tokens are counted and skipped (see LineValues).
 */
import type { BackoffOptions } from "../../kernel/backoff.js";
import type { Logger } from "../../kernel/log.js";
import type { Timers } from "../../kernel/timers.js";
import { TypedEvents, type Unsubscribe } from "../events.js";
import type { LineLink, LineLinkEvents, LineStats, SerialLinkState, SerialSettings } from "../types.js";
import type { SerialBackend } from "./backend.js";
import { LineParser } from "./parsers/line.js";
import { PortSession } from "./port-session.js";

export interface LineSerialLinkOptions {
  id: string;
  path: string;
  backend: SerialBackend;
  settings?: Partial<SerialSettings>;
  /** Longest line kept, in bytes. */
  maxLineBytes?: number;
  reopen?: BackoffOptions;
  timers?: Timers;
  logger?: Logger;
  random?: () => number;
}

export class LineSerialLink implements LineLink {
  readonly protocol = "line" as const;
  readonly id: string;
  readonly path: string;
  /** Tokens that were not key=number; LineValues increments it. */
  malformedTokens = 0;
  private readonly session: PortSession;
  private parser: LineParser;
  private readonly lines = new TypedEvents<{ line: string }>();
  private parserCounters = { lines: 0, overlongLines: 0, droppedBytes: 0 };
  private bytesIn = 0;

  constructor(private readonly options: LineSerialLinkOptions) {
    this.id = options.id;
    this.path = options.path;
    this.session = new PortSession(options);
    this.parser = this.newParser();
    this.session.on("data", (chunk) => {
      this.bytesIn += chunk.length;
      this.parser.write(chunk);
    });
    // A half line from before an unplug must not be glued to the first line after the replug.
    this.session.on("detach", () => {
      this.foldCounters();
      this.parser.destroy();
      this.parser = this.newParser();
    });
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

  on<K extends keyof LineLinkEvents>(event: K, listener: (payload: LineLinkEvents[K]) => void): Unsubscribe {
    if (event === "line") return this.lines.on("line", listener as (l: string) => void);
    return this.session.on(event as Exclude<K, "line">, listener as never);
  }

  open(settings?: Partial<SerialSettings>): Promise<void> {
    return this.session.open(settings);
  }

  start(): Promise<void> {
    return this.session.start();
  }

  close(): Promise<void> {
    return this.session.close();
  }

  async writeLine(text: string): Promise<void> {
    if (/[\r\n]/.test(text))
      throw this.session.error("driver_bad_argument", "a line to write must not contain CR or LF");
    await this.session.write(Buffer.from(`${text}\n`, "utf8"));
  }

  actualBaudRate(): Promise<number> {
    return this.session.actualBaudRate();
  }

  stats(): LineStats {
    const c = this.parser.counters;
    return {
      bytesIn: this.bytesIn,
      bytesOut: this.session.counters.bytesOut,
      lines: this.parserCounters.lines + c.lines,
      overlongLines: this.parserCounters.overlongLines + c.overlongLines,
      droppedBytes: this.parserCounters.droppedBytes + c.droppedBytes,
      malformedTokens: this.malformedTokens,
      unplugs: this.session.counters.unplugs,
      reopens: this.session.counters.reopens,
    };
  }

  private newParser(): LineParser {
    const p = new LineParser({ maxLength: this.options.maxLineBytes ?? 256 });
    p.on("data", (line: string) => this.lines.emit("line", line));
    return p;
  }

  private foldCounters(): void {
    const c = this.parser.counters;
    this.parserCounters.lines += c.lines;
    this.parserCounters.overlongLines += c.overlongLines;
    this.parserCounters.droppedBytes += c.droppedBytes;
  }
}
