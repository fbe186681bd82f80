/** Figures and the stdout table of bench/reconnect.ts. */
import { median } from "../lib/stats.js";
import type { PhaseResult, RunResult } from "./measure.js";

export interface PhaseSummary {
  /** Modelled time (measured + TCP handshake round trip), median/min/max over the runs. */
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** Measured only, without the TCP handshake round trip. */
  measuredMedianMs: number;
  /** Median round trips; equal to min and max unless a run took another path. */
  roundTrips: number;
  roundTripsMin: number;
  roundTripsMax: number;
  /** Modelled median minus round trips x RTT: CPU (TLS, PBKDF2, XML), timers, scheduling. */
  restMs: number;
}

export interface CellSummary {
  variant: string;
  latencyMs: number;
  runs: RunResult[];
  mechanism: string | undefined;
  fresh: PhaseSummary;
  resume: PhaseSummary & { waitMedianMs: number };
  /** Modelled medians over the baseline variant's at the same latency. */
  ratio: { fresh: number; resume: number };
}

function summarizePhase(phases: PhaseResult[], latencyMs: number): PhaseSummary {
  const modelled = phases.map((p) => p.modelledMs);
  const rts = phases.map((p) => p.roundTrips);
  const medianMs = median(modelled);
  const roundTrips = median(rts);
  return {
    medianMs,
    minMs: Math.min(...modelled),
    maxMs: Math.max(...modelled),
    measuredMedianMs: median(phases.map((p) => p.wallMs)),
    roundTrips,
    roundTripsMin: Math.min(...rts),
    roundTripsMax: Math.max(...rts),
    restMs: medianMs - roundTrips * 2 * latencyMs,
  };
}

export function summarizeCell(variant: string, latencyMs: number, runs: RunResult[]): Omit<CellSummary, "ratio"> {
  return {
    variant,
    latencyMs,
    runs,
    mechanism: runs[0]?.fresh.mechanism,
    fresh: summarizePhase(
      runs.map((r) => r.fresh),
      latencyMs,
    ),
    resume: {
      ...summarizePhase(
        runs.map((r) => r.resume),
        latencyMs,
      ),
      waitMedianMs: median(runs.map((r) => r.resume.waitMs)),
    },
  };
}

/** Adds ratios against the baseline (the first variant) at each latency. */
export function withRatios(cells: Omit<CellSummary, "ratio">[], baseline: string): CellSummary[] {
  return cells.map((c) => {
    const base = cells.find((b) => b.variant === baseline && b.latencyMs === c.latencyMs);
    return {
      ...c,
      ratio: {
        fresh: base ? c.fresh.medianMs / base.fresh.medianMs : Number.NaN,
        resume: base ? c.resume.medianMs / base.resume.medianMs : Number.NaN,
      },
    };
  });
}

const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : "-");
const spread = (s: PhaseSummary): string => `${ms(s.medianMs)} (${ms(s.minMs)}-${ms(s.maxMs)})`;
const rts = (s: PhaseSummary): string =>
  s.roundTripsMin === s.roundTripsMax ? String(s.roundTrips) : `${s.roundTripsMin}-${s.roundTripsMax}`;

export function renderTable(cells: CellSummary[], baseline: string): string {
  const header = [
    "variant",
    "latency",
    "login ms med (min-max)",
    "RTs",
    "rest",
    `vs ${baseline}`,
    "resume ms med (min-max)",
    "wait",
    "RTs",
    "rest",
    `vs ${baseline}`,
  ];
  const rows = cells.map((c) => [
    c.variant,
    `${c.latencyMs} ms`,
    spread(c.fresh),
    rts(c.fresh),
    ms(c.fresh.restMs),
    c.ratio.fresh.toFixed(2),
    spread(c.resume),
    ms(c.resume.waitMedianMs),
    rts(c.resume),
    ms(c.resume.restMs),
    c.ratio.resume.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  // Names left, figures right: columns of numbers line up on their last digit.
  const line = (r: string[]): string =>
    r.map((x, i) => (i === 0 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}
