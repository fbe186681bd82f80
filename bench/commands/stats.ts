/** Latency figures for the command benchmark: percentiles and a summary per variant. */

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface LatencySummary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  /** Round trips slower than TAIL_MS: the Nagle/delayed-ACK signature is 40 ms and up. */
  over20ms: number;
  /** Median of those slow round trips (NaN when there are none). */
  tailMedian: number;
}

export const TAIL_MS = 20;

export function summarizeLatency(samples: readonly number[]): LatencySummary {
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? Number.NaN,
    mean: s.reduce((a, b) => a + b, 0) / (s.length || 1),
    over20ms: s.filter((x) => x > TAIL_MS).length,
    tailMedian: percentile(
      s.filter((x) => x > TAIL_MS),
      50,
    ),
  };
}

export function renderLatencyTable(
  rows: { title: string; summary: LatencySummary; ratioTo?: LatencySummary }[],
  ratioTitle: string,
): string {
  const header = [
    "variant",
    "n",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    `>${TAIL_MS} ms`,
    "their p50",
    `p50 ${ratioTitle}`,
    `p99 ${ratioTitle}`,
  ];
  const f = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : "n/a");
  const body = rows.map(({ title, summary: s, ratioTo: r }) => [
    title,
    String(s.n),
    f(s.p50),
    f(s.p90),
    f(s.p99),
    f(s.max, 1),
    String(s.over20ms),
    s.over20ms > 0 ? f(s.tailMedian, 1) : "",
    r ? f(s.p50 / r.p50) : "",
    r ? f(s.p99 / r.p99) : "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}
