/** Turns the children's events into figures: medians per client, ratios, a text table. */
import { BenchError } from "../lib/errors.js";
import { MiB, median } from "../lib/stats.js";
import type { ChildEvent, MemorySample } from "./protocol.js";

export interface ThroughputRun {
  loaded: MemorySample;
  warm: MemorySample;
  after: MemorySample;
  messages: number;
  wallMs: number;
  cpuUs: number;
  resumes: { resumeMs: number; reconnectMs: number; resumed: boolean }[];
  /** Link losses the client saw; more than the resets means it dropped a link by itself. */
  linkDrops: number;
  /** Prosody's CPU time during the burst (from /proc), when readable. */
  serverCpuUs: number | undefined;
}

export interface VariantSummary {
  loginMs: number;
  loginMsMin: number;
  loginMsMax: number;
  rssLoadedMiB: number;
  rssWarmMiB: number;
  heapWarmMiB: number;
  rssAfterMiB: number;
  heapAfterMiB: number;
  cpuUsPerMsg: number;
  serverCpuUsPerMsg: number;
  msgsPerSec: number;
  resumeMs: number;
  reconnectMs: number;
  resumesSeen: number;
  resumedAll: boolean;
  unexpectedDrops: number;
}

export function parseThroughputRun(events: ChildEvent[], name: string, serverCpuUs: number | undefined): ThroughputRun {
  const mem = (phase: "loaded" | "warm" | "after"): MemorySample => {
    const e = events.find((x) => x.event === "mem" && x.phase === phase);
    if (e?.event !== "mem") throw new BenchError("bench_missing", `${name}: no ${phase} memory sample`);
    return { rss: e.rss, heapUsed: e.heapUsed };
  };
  const tp = events.find((x) => x.event === "throughput");
  const done = events.find((x) => x.event === "done");
  if (tp?.event !== "throughput" || !done || done.event !== "done")
    throw new BenchError("bench_missing", `${name}: no throughput figures`);
  const resumes = events.flatMap((e) =>
    e.event === "resumed" ? [{ resumeMs: e.resumeMs, reconnectMs: e.reconnectMs, resumed: e.resumed }] : [],
  );
  return {
    loaded: mem("loaded"),
    warm: mem("warm"),
    after: mem("after"),
    messages: tp.messages,
    wallMs: tp.wallMs,
    cpuUs: tp.cpuUserUs + tp.cpuSystemUs,
    resumes,
    linkDrops: done.linkDrops,
    serverCpuUs,
  };
}

export function parseLogins(events: ChildEvent[], name: string): number[] {
  const e = events.find((x) => x.event === "logins");
  if (e?.event !== "logins") throw new BenchError("bench_missing", `${name}: no login times`);
  return e.ms;
}

export function summarize(loginsMs: number[], runs: ThroughputRun[]): VariantSummary {
  const m = (f: (r: ThroughputRun) => number) => median(runs.map(f));
  const resumes = runs.flatMap((r) => r.resumes);
  return {
    loginMs: median(loginsMs),
    loginMsMin: loginsMs.length ? Math.min(...loginsMs) : Number.NaN,
    loginMsMax: loginsMs.length ? Math.max(...loginsMs) : Number.NaN,
    rssLoadedMiB: m((r) => r.loaded.rss) / MiB,
    rssWarmMiB: m((r) => r.warm.rss) / MiB,
    heapWarmMiB: m((r) => r.warm.heapUsed) / MiB,
    rssAfterMiB: m((r) => r.after.rss) / MiB,
    heapAfterMiB: m((r) => r.after.heapUsed) / MiB,
    cpuUsPerMsg: m((r) => r.cpuUs / r.messages),
    serverCpuUsPerMsg: m((r) => (r.serverCpuUs === undefined ? Number.NaN : r.serverCpuUs / r.messages)),
    msgsPerSec: m((r) => r.messages / (r.wallMs / 1000)),
    resumeMs: median(resumes.map((r) => r.resumeMs)),
    reconnectMs: median(resumes.map((r) => r.reconnectMs)),
    resumesSeen: resumes.length,
    resumedAll: resumes.every((r) => r.resumed),
    unexpectedDrops: runs.reduce((n, r) => n + Math.max(0, r.linkDrops - r.resumes.length), 0),
  };
}

interface Row {
  label: string;
  key: keyof VariantSummary;
  digits: number;
}

export const TABLE_ROWS: Row[] = [
  { label: "login, ms (median)", key: "loginMs", digits: 1 },
  { label: "RSS loaded, MiB", key: "rssLoadedMiB", digits: 1 },
  { label: "RSS after warm-up, MiB", key: "rssWarmMiB", digits: 1 },
  { label: "heapUsed after warm-up, MiB", key: "heapWarmMiB", digits: 2 },
  { label: "RSS after 10k, MiB", key: "rssAfterMiB", digits: 1 },
  { label: "heapUsed after 10k, MiB", key: "heapAfterMiB", digits: 2 },
  { label: "CPU per message, µs", key: "cpuUsPerMsg", digits: 1 },
  { label: "Prosody CPU per message, µs", key: "serverCpuUsPerMsg", digits: 1 },
  { label: "messages/s", key: "msgsPerSec", digits: 0 },
  { label: "resume after reset, ms", key: "resumeMs", digits: 0 },
  { label: "  of which reconnect→resumed, ms", key: "reconnectMs", digits: 1 },
  { label: "drops not caused by a reset", key: "unexpectedDrops", digits: 0 },
];

export function ratio(a: number, b: number): number {
  return b === 0 ? Number.NaN : a / b;
}

export function renderTable(
  columns: { title: string; summary: VariantSummary }[],
  ratioColumns: { title: string; num: VariantSummary; den: VariantSummary }[],
  messages: number,
): string {
  const header = ["figure", ...columns.map((c) => c.title), ...ratioColumns.map((r) => r.title)];
  const burst = messages % 1000 === 0 ? `${messages / 1000}k` : String(messages);
  const body = TABLE_ROWS.map((row) => [
    row.label.replace("10k", burst),
    ...columns.map((c) => fmt(c.summary[row.key] as number, row.digits)),
    ...ratioColumns.map((r) =>
      row.key === "unexpectedDrops" ? "" : fmt(ratio(r.num[row.key] as number, r.den[row.key] as number), 2),
    ),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

function fmt(v: number, digits: number): string {
  return Number.isFinite(v) ? v.toFixed(digits) : "n/a";
}
