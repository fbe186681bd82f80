/**
 * LineParser: bytes in, text lines out (objectMode), for devices that print `key=value` lines
 * (many Arduino sketches, NMEA). Unlike a bare delimiter parser its buffer is bounded: a line
 * longer than maxLength is dropped up to the next delimiter and counted, never accumulated.
 */
import { Transform, type TransformCallback, type TransformOptions } from "node:stream";

export interface LineParserOptions extends TransformOptions {
  /** Longest line kept, in bytes, delimiter excluded. Default 256. */
  maxLength?: number;
  /** Default "\n"; a trailing "\r" is stripped from each line either way. */
  delimiter?: string;
  encoding?: BufferEncoding;
}

export interface LineParserCounters {
  lines: number;
  overlongLines: number;
  droppedBytes: number;
}

export class LineParser extends Transform {
  readonly counters: LineParserCounters = { lines: 0, overlongLines: 0, droppedBytes: 0 };
  private parts: Buffer[] = [];
  private size = 0;
  private overlong = false;
  private readonly delimiter: Buffer;
  private readonly maxLength: number;
  private readonly textEncoding: BufferEncoding;

  constructor(options: LineParserOptions = {}) {
    const { maxLength = 256, delimiter = "\n", encoding = "utf8", ...rest } = options;
    super({ ...rest, readableObjectMode: true });
    if (delimiter.length === 0) throw new RangeError("delimiter must not be empty");
    this.delimiter = Buffer.from(delimiter, encoding);
    this.maxLength = maxLength;
    this.textEncoding = encoding;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let data = this.size > 0 ? Buffer.concat([...this.parts, chunk]) : chunk;
    this.parts = [];
    this.size = 0;
    for (;;) {
      const at = data.indexOf(this.delimiter);
      if (at < 0) break;
      this.emitLine(data.subarray(0, at));
      data = data.subarray(at + this.delimiter.length);
    }
    if (data.length > this.maxLength + this.delimiter.length) {
      // Keep only a possible partial delimiter; the rest of this line is lost anyway.
      const keep = this.delimiter.length - 1;
      this.counters.droppedBytes += data.length - keep;
      this.overlong = true;
      data = data.subarray(data.length - keep);
    }
    if (data.length > 0) {
      this.parts = [Buffer.from(data)];
      this.size = data.length;
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.size > 0) this.emitLine(Buffer.concat(this.parts));
    this.parts = [];
    this.size = 0;
    done();
  }

  private emitLine(raw: Buffer): void {
    if (this.overlong || raw.length > this.maxLength + 1) {
      this.overlong = false;
      this.counters.overlongLines++;
      this.counters.droppedBytes += raw.length;
      return;
    }
    let line = raw.toString(this.textEncoding);
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line.length > this.maxLength) {
      this.counters.overlongLines++;
      this.counters.droppedBytes += raw.length;
      return;
    }
    this.counters.lines++;
    this.push(line);
  }
}
