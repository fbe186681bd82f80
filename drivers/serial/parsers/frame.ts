/**
 * FrameParser: bytes in, decoded Frames out (objectMode), for the framed protocol of
 * docs/serial-protocol.md. A serial line carries noise, half frames after a replug and other
 * programs' output, so the parser never trusts a header: it hunts for SYNC, checks the version
 * and length bound, verifies the CRC, and on any failure drops ONE byte and hunts again, which
 * guarantees that a real frame hidden behind a bogus header is still found. Nothing it receives
 * can make it throw or grow past maxLength + overhead.
 */
import { Transform, type TransformCallback, type TransformOptions } from "node:stream";
import { realTimers, type TimerHandle, type Timers } from "../../../kernel/timers.js";
import type { Frame } from "../../types.js";
import { FRAME_OVERHEAD, HEADER_BYTES, MAX_PAYLOAD_LIMIT, PROTOCOL_VERSION, SYNC1, SYNC2 } from "../codec.js";
import { crc16ccitt } from "../crc.js";

export interface FrameParserOptions extends TransformOptions {
  /** Largest payload accepted, in bytes; a header announcing more is treated as noise. Default 1024. */
  maxLength?: number;
  /**
   * A started frame that sees no new byte for this long is abandoned (counted as partial) and the
   * parser hunts again from the byte after its SYNC. 0 disables. Default 100 ms.
   */
  frameTimeoutMs?: number;
  timers?: Timers;
}

export interface FrameParserCounters {
  framesIn: number;
  bytesIn: number;
  garbageBytes: number;
  badCrc: number;
  partialFrames: number;
  oversizeFrames: number;
}

const SYNC = Buffer.from([SYNC1, SYNC2]);

export class FrameParser extends Transform {
  readonly counters: FrameParserCounters = {
    framesIn: 0,
    bytesIn: 0,
    garbageBytes: 0,
    badCrc: 0,
    partialFrames: 0,
    oversizeFrames: 0,
  };
  private buffer: Buffer = Buffer.alloc(0);
  private readonly maxLength: number;
  private readonly frameTimeoutMs: number;
  private readonly timers: Timers;
  private timer: TimerHandle | undefined;

  constructor(options: FrameParserOptions = {}) {
    const { maxLength = 1024, frameTimeoutMs = 100, timers = realTimers, ...rest } = options;
    super({ ...rest, readableObjectMode: true });
    if (!Number.isInteger(maxLength) || maxLength < 0 || maxLength > MAX_PAYLOAD_LIMIT)
      throw new RangeError(`maxLength must be 0..${MAX_PAYLOAD_LIMIT}`);
    this.maxLength = maxLength;
    this.frameTimeoutMs = frameTimeoutMs;
    this.timers = timers;
  }

  /** Bytes held while waiting for the rest of a frame. */
  get buffered(): number {
    return this.buffer.length;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.counters.bytesIn += chunk.length;
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    this.drain();
    done();
  }

  override _flush(done: TransformCallback): void {
    this.discardBuffered();
    done();
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.timer?.cancel();
    this.timer = undefined;
    cb(err);
  }

  /** Drops whatever is buffered (e.g. the link was closed or unplugged mid-frame). */
  discardBuffered(): void {
    this.timer?.cancel();
    this.timer = undefined;
    if (this.buffer.length === 0) return;
    if (this.buffer[0] === SYNC1 && (this.buffer.length === 1 || this.buffer[1] === SYNC2))
      this.counters.partialFrames++;
    this.counters.garbageBytes += this.buffer.length;
    this.buffer = Buffer.alloc(0);
  }

  private skip(n: number): void {
    this.counters.garbageBytes += n;
    this.buffer = this.buffer.subarray(n);
  }

  private drain(): void {
    this.timer?.cancel();
    this.timer = undefined;
    for (;;) {
      const at = this.buffer.indexOf(SYNC);
      if (at < 0) {
        // Keep a trailing SYNC1: it may be the first half of a SYNC split across chunks.
        const keep = this.buffer.length > 0 && this.buffer[this.buffer.length - 1] === SYNC1 ? 1 : 0;
        this.skip(this.buffer.length - keep);
        break;
      }
      if (at > 0) this.skip(at);
      if (this.buffer.length < HEADER_BYTES) break;
      if (this.buffer[2] !== PROTOCOL_VERSION) {
        this.skip(1);
        continue;
      }
      const length = this.buffer.readUInt16BE(5);
      if (length > this.maxLength) {
        this.counters.oversizeFrames++;
        this.skip(1);
        continue;
      }
      const total = FRAME_OVERHEAD + length;
      if (this.buffer.length < total) break;
      const expected = this.buffer.readUInt16BE(HEADER_BYTES + length);
      if (crc16ccitt(this.buffer, 2, HEADER_BYTES + length) !== expected) {
        this.counters.badCrc++;
        this.skip(1);
        continue;
      }
      // Copy the payload: the chunk it came from may be a pooled buffer reused by the port.
      const frame: Frame = {
        type: this.buffer[3]!,
        seq: this.buffer[4]!,
        payload: Buffer.from(this.buffer.subarray(HEADER_BYTES, HEADER_BYTES + length)),
      };
      this.buffer = this.buffer.subarray(total);
      this.counters.framesIn++;
      this.push(frame);
    }
    if (this.buffer.length > 0 && this.frameTimeoutMs > 0) {
      this.timer = this.timers.setTimeout(() => {
        this.timer = undefined;
        this.counters.partialFrames++;
        this.skip(1);
        this.drain();
      }, this.frameTimeoutMs);
    }
  }
}
