/** Turns telemetry runs into figures per variant, ratios and a text table. */
import { MiB, median } from "../lib/stats.js";
import type { TelemetryRun } from "./runner.js";

export interface TelemetrySummary {
  readingsPerSec: number;
  itemsPerSec: number;
  /** Client process CPU (user+system) over the measured phase, per reading. */
  cpuUsPerReading: number;
  serverCpuUsPerReading: number;
  rssLoadedMiB: number;
  rssAfterMiB: number;
  heapAfterMiB: number;
  maxRssMiB: number;
  iqBytes: number;
}

export function summarizeTelemetry(runs: TelemetryRun[]): TelemetrySummary {
  const m = (f: (r: TelemetryRun) => number) => median(runs.map(f));
  return {
    readingsPerSec: m((r) => r.readings / (r.wallMs / 1000)),
    itemsPerSec: m((r) => r.items / (r.wallMs / 1000)),
    cpuUsPerReading: m((r) => r.cpuUs / r.readings),
    serverCpuUsPerReading: m((r) => (r.serverCpuUs === undefined ? Number.NaN : r.serverCpuUs / r.readings)),
    rssLoadedMiB: m((r) => r.loaded.rss) / MiB,
    rssAfterMiB: m((r) => r.after.rss) / MiB,
    heapAfterMiB: m((r) => r.after.heapUsed) / MiB,
    maxRssMiB: m((r) => r.maxRss) / MiB,
    iqBytes: m((r) => r.iqBytes),
  };
}

export interface TableRow {
  title: string;
  s: TelemetrySummary;
  /** Ratios against this summary (the @xmpp/client run of the same batch size). */
  vs?: TelemetrySummary;
  /** Share of this (the raw publisher's) readings/s. */
  ceiling?: TelemetrySummary;
}

const f = (v: number, d: number) => (Number.isFinite(v) ? v.toFixed(d) : "n/a");

export function renderTelemetryTable(rows: TableRow[]): string {
  const header = [
    "variant",
    "readings/s",
    "items/s",
    "CPU µs/reading",
    "Prosody µs/reading",
    "1 core r/s",
    "RSS after MiB",
    "peak RSS MiB",
    "heap after MiB",
    "IQ bytes",
    "r/s ÷ xmpp.js",
    "CPU ÷ xmpp.js",
    "r/s ÷ ceiling",
  ];
  const body = rows.map(({ title, s, vs, ceiling }) => [
    title,
    f(s.readingsPerSec, 0),
    f(s.itemsPerSec, 0),
    f(s.cpuUsPerReading, 1),
    f(s.serverCpuUsPerReading, 1),
    f(1e6 / s.serverCpuUsPerReading, 0),
    f(s.rssAfterMiB, 1),
    f(s.maxRssMiB, 1),
    f(s.heapAfterMiB, 2),
    f(s.iqBytes, 0),
    vs ? f(s.readingsPerSec / vs.readingsPerSec, 2) : "",
    vs ? f(s.cpuUsPerReading / vs.cpuUsPerReading, 2) : "",
    ceiling ? f(s.readingsPerSec / ceiling.readingsPerSec, 2) : "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}
