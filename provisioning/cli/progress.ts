/**
 * Progress of a fleet job for the person watching: on a terminal one bar rewritten in place (at
 * most every 100 ms), elsewhere (CI, a pipe, a log file) a plain line at every tenth of the job and
 * at least every 10 s while something changes.
 */
import type { JobCounts } from "../jobs/job.js";
import type { FleetIo } from "./context.js";

export function describeCounts(c: JobCounts): string {
  const parts: string[] = [];
  const add = (n: number, label: string) => {
    if (n > 0) parts.push(`${n} ${label}`);
  };
  add(c.completed, "completed");
  add(c.error, "error");
  add(c["timed-out"], "timed out");
  add(c.offline, "offline");
  add(c.aborted, "aborted");
  add(c.unknown, "unknown");
  add(c.running, "running");
  add(c.waiting, "waiting for them to come online");
  add(c.pending, "pending");
  return parts.join(", ");
}

const FINAL: Array<keyof JobCounts> = ["completed", "error", "timed-out", "offline", "aborted", "unknown"];

export class ProgressView {
  private lastDraw = Number.NEGATIVE_INFINITY;
  private lastTenth = -1;
  private lastLine = 0;
  private drawn = false;

  constructor(
    private readonly io: FleetIo,
    private readonly total: number,
    private readonly label: string,
    private readonly clock: () => number = Date.now,
  ) {}

  update(c: JobCounts): void {
    const done = FINAL.reduce((n, k) => n + c[k], 0);
    const now = this.clock();
    if (this.io.ttyErr) {
      if (now - this.lastDraw < 100 && done < this.total) return;
      this.lastDraw = now;
      const width = 24;
      const filled = Math.round((done / Math.max(1, this.total)) * width);
      this.io.ttyErr(
        `\r\x1b[2K${this.label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${this.total}  ${describeCounts(c)}`,
      );
      this.drawn = true;
      return;
    }
    const tenth = Math.floor((done * 10) / Math.max(1, this.total));
    if (tenth === this.lastTenth && now - this.lastLine < 10_000) return;
    this.lastTenth = tenth;
    this.lastLine = now;
    this.io.err(`iot-fleet: ${this.label} ${done}/${this.total}: ${describeCounts(c)}`);
  }

  /** Ends the bar's line so what follows starts on its own. */
  end(): void {
    if (this.drawn) this.io.ttyErr?.("\n");
    this.drawn = false;
  }
}
