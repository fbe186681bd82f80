/**
 * Dead letters: batches the server refused for good (the same refusal, telemetry.publish.deadLetter
 * tries in a row or for that long), moved out of the spool so the readings behind them flow again.
 * Kept, never dropped silently: one JSON line per batch (item id, node, sequence range, the refusal,
 * every reading) in <dataDir>/telemetry/dead-letter.jsonl, written with fsync before the batch
 * leaves the spool. The file is bounded (maxBytes); when it is full nothing more is moved and the
 * publisher stays blocked, with the readings still spooled, until someone reads and clears the file.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { fsyncDirSync } from "../../kernel/fsutil.js";
import type { Reading } from "./reading.js";

export interface DeadLetter {
  /** When it was moved (ISO 8601 UTC). */
  at: string;
  itemId: string;
  node: string;
  service: string;
  firstSeq: number;
  lastSeq: number;
  /** The refusal that made it a dead letter, and how often and since when it was repeated. */
  error: { code: string; condition?: string; message: string; tries: number; since: string };
  readings: Reading[];
}

export interface DeadLetterSink {
  /** Appends durably; false when the file would exceed its bound (nothing written). */
  append(letter: DeadLetter): Promise<boolean>;
  /** Batches and readings held, including those of earlier runs. */
  counts(): { batches: number; readings: number };
}

export class FileDeadLetters implements DeadLetterSink {
  private batches = 0;
  private readings = 0;
  private bytes = 0;

  constructor(
    readonly path: string,
    private readonly maxBytes: number,
  ) {
    if (!existsSync(path)) return;
    this.bytes = statSync(path).size;
    for (const line of readFileSync(path, "utf8").split("\n")) {
      if (!line.trim()) continue;
      try {
        const l = JSON.parse(line) as Partial<DeadLetter>;
        this.batches++;
        this.readings += Array.isArray(l.readings) ? l.readings.length : 0;
      } catch {
        // A torn last line (power cut mid-append) is not a dead letter; the readings it held are
        // still in the spool, because the spool is acked only after the append returned.
      }
    }
  }

  async append(letter: DeadLetter): Promise<boolean> {
    const line = `${JSON.stringify(letter)}\n`;
    const size = Buffer.byteLength(line);
    if (this.bytes + size > this.maxBytes) return false;
    const created = !existsSync(this.path);
    if (created) mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const fd = openSync(this.path, "a", 0o600);
    try {
      writeSync(fd, line);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (created) fsyncDirSync(dirname(this.path));
    this.bytes += size;
    this.batches++;
    this.readings += letter.readings.length;
    return true;
  }

  counts(): { batches: number; readings: number } {
    return { batches: this.batches, readings: this.readings };
  }
}
