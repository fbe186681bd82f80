/** Tables and target checks of the memory benchmark (figures in MiB). */
import { MiB, median } from "../lib/stats.js";
import type { BaselineFigures } from "./baselines.js";
import type { Variant, VariantId } from "./configs.js";
import type { GrowthResult, Measurement, ReplayResult } from "./phases.js";

export type BaselineId = "bare" | "tls" | "session-ours" | "session-xmppjs" | "session-xmppjs-unbundled";

export const BASELINE_TITLES: Record<BaselineId, string> = {
  bare: "bare node",
  tls: "node + 1 TLS socket (STARTTLS)",
  "session-ours": "XmppSession alone (bench/session)",
  "session-xmppjs": "@xmpp/client 0.14, bundled",
  "session-xmppjs-unbundled": "@xmpp/client 0.14, unbundled",
};

export interface RunResult {
  run: number;
  baselines: Record<BaselineId, BaselineFigures>;
  steady: Partial<Record<VariantId, Measurement>>;
  replay: Partial<Record<VariantId, ReplayResult>>;
  growth: Partial<Record<VariantId, GrowthResult>>;
}

/** Median over runs of one figure; NaN when no run has it. */
export function over<T>(runs: RunResult[], pick: (r: RunResult) => T | undefined, f: (t: T) => number): number {
  const xs = runs.flatMap((r) => {
    const t = pick(r);
    return t === undefined ? [] : [f(t)];
  });
  return median(xs.filter(Number.isFinite));
}

const mib = (b: number, d = 1) => (Number.isFinite(b) ? (b / MiB).toFixed(d) : "n/a");
/** CPU ms per 1,000 readings. */
const cpu = (ms: number) => (Number.isFinite(ms) ? ms.toFixed(0) : "n/a");
const signed = (b: number, d = 1) => (Number.isFinite(b) ? `${b >= 0 ? "+" : ""}${(b / MiB).toFixed(d)}` : "n/a");

function table(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

export interface Summary {
  baselines: Record<
    BaselineId,
    {
      rss: number;
      rssAnon: number;
      rssFile: number;
      pss: number;
      heapUsed: number;
      external: number;
      threads: number;
      n: number;
    }
  >;
  steady: Partial<
    Record<
      VariantId,
      {
        rss: number;
        rssAnon: number;
        pss: number;
        heapUsed: number;
        heapUsedMin: number;
        /** After a full GC (agents run with --expose-gc); NaN when the agent did not report it. */
        heapLive: number;
        external: number;
        threads: number;
        n: number;
      }
    >
  >;
  replay: Partial<
    Record<
      VariantId,
      {
        spooled: number;
        outageS: number;
        reconnectS: number;
        drainS: number;
        peakRss: number;
        peakRssAnon: number;
        peakRssOutage: number;
        peakRssDrain: number;
        peakHeapUsedSeen: number;
        /** Agent CPU per 1,000 replayed readings while draining. */
        drainCpuMsPer1000: number;
        n: number;
      }
    >
  >;
  growth: Partial<
    Record<
      VariantId,
      {
        readings: number;
        rss: number;
        rssAnon: number;
        heapUsed: number;
        heapUsedMin: number;
        heapLive: number;
        heapVsSteady: number;
        heapMinVsSteady: number;
        /** Live heap (after a full GC) after the growth readings minus at steady state. */
        heapLiveVsSteady: number;
        burstCpuMsPer1000: number;
        rssVsSteady: number;
        n: number;
      }
    >
  >;
}

export function summarize(runs: RunResult[], variants: Variant[]): Summary {
  const baselines = {} as Summary["baselines"];
  for (const id of Object.keys(BASELINE_TITLES) as BaselineId[]) {
    const pick = (r: RunResult) => r.baselines[id];
    baselines[id] = {
      rss: over(runs, pick, (b) => b.proc.rss),
      rssAnon: over(runs, pick, (b) => b.proc.rssAnon),
      rssFile: over(runs, pick, (b) => b.proc.rssFile),
      pss: over(runs, pick, (b) => b.proc.pss),
      heapUsed: over(runs, pick, (b) => b.inside.heapUsed),
      external: over(runs, pick, (b) => b.inside.external ?? Number.NaN),
      threads: over(runs, pick, (b) => b.proc.threads),
      n: runs.filter((r) => r.baselines[id] !== undefined).length,
    };
  }
  const steady: Summary["steady"] = {};
  const replay: Summary["replay"] = {};
  const growth: Summary["growth"] = {};
  for (const v of variants) {
    const s = (r: RunResult) => r.steady[v.id];
    if (runs.some((r) => s(r)))
      steady[v.id] = {
        rss: over(runs, s, (m) => m.proc.rss),
        rssAnon: over(runs, s, (m) => m.proc.rssAnon),
        pss: over(runs, s, (m) => m.proc.pss),
        heapUsed: over(runs, s, (m) => m.heapUsed),
        heapUsedMin: over(runs, s, (m) => m.heapUsedMin),
        heapLive: over(runs, s, (m) => m.heapLive ?? Number.NaN),
        external: over(runs, s, (m) => m.external),
        threads: over(runs, s, (m) => m.proc.threads),
        n: runs.filter((r) => s(r)).length,
      };
    const p = (r: RunResult) => r.replay[v.id];
    if (runs.some((r) => p(r)))
      replay[v.id] = {
        spooled: over(runs, p, (x) => x.spooledAtReconnect),
        outageS: over(runs, p, (x) => x.outageMs / 1000),
        reconnectS: over(runs, p, (x) => x.reconnectMs / 1000),
        drainS: over(runs, p, (x) => x.drainMs / 1000),
        peakRss: over(runs, p, (x) => x.peakRss),
        peakRssAnon: over(runs, p, (x) => x.peakRssAnon),
        peakRssOutage: over(runs, p, (x) => x.peakRssOutage),
        peakRssDrain: over(runs, p, (x) => x.peakRssDrain),
        peakHeapUsedSeen: over(runs, p, (x) => x.peakHeapUsedSeen),
        drainCpuMsPer1000: over(runs, p, (x) => (x.drainCpuMs * 1000) / x.spooledAtReconnect),
        n: runs.filter((r) => p(r)).length,
      };
    const g = (r: RunResult) => r.growth[v.id];
    // Against the steady state of the same process: only runs that have both.
    const both = runs.filter((r) => r.growth[v.id] && r.steady[v.id]);
    if (runs.some((r) => g(r)))
      growth[v.id] = {
        readings: over(runs, g, (x) => x.readings),
        rss: over(runs, g, (x) => x.after.proc.rss),
        rssAnon: over(runs, g, (x) => x.after.proc.rssAnon),
        heapUsed: over(runs, g, (x) => x.after.heapUsed),
        heapUsedMin: over(runs, g, (x) => x.after.heapUsedMin),
        heapLive: over(runs, g, (x) => x.after.heapLive ?? Number.NaN),
        heapLiveVsSteady: over(
          both,
          (r) => r,
          (r) => (r.growth[v.id]!.after.heapLive ?? Number.NaN) - (r.steady[v.id]!.heapLive ?? Number.NaN),
        ),
        burstCpuMsPer1000: over(runs, g, (x) => x.burstCpuMsPer1000 ?? Number.NaN),
        heapVsSteady: over(
          both,
          (r) => r,
          (r) => r.growth[v.id]!.after.heapUsed - r.steady[v.id]!.heapUsed,
        ),
        heapMinVsSteady: over(
          both,
          (r) => r,
          (r) => r.growth[v.id]!.after.heapUsedMin - r.steady[v.id]!.heapUsedMin,
        ),
        rssVsSteady: over(
          both,
          (r) => r,
          (r) => r.growth[v.id]!.after.proc.rss - r.steady[v.id]!.proc.rss,
        ),
        n: runs.filter((r) => g(r)).length,
      };
  }
  return { baselines, steady, replay, growth };
}

export function baselineTable(s: Summary): string {
  const x = s.baselines["session-xmppjs"].rss;
  return table(
    [
      "process (unit's node flags)",
      "runs",
      "RSS",
      "RssAnon",
      "RssFile",
      "Pss",
      "heapUsed",
      "external",
      "threads",
      "RSS ÷ @xmpp/client",
    ],
    (Object.keys(BASELINE_TITLES) as BaselineId[]).map((id) => {
      const b = s.baselines[id];
      return [
        BASELINE_TITLES[id],
        String(b.n),
        mib(b.rss),
        mib(b.rssAnon),
        mib(b.rssFile),
        mib(b.pss),
        mib(b.heapUsed, 2),
        mib(b.external, 2),
        String(b.threads),
        id.startsWith("session") ? (b.rss / x).toFixed(2) : "",
      ];
    }),
  );
}

export function steadyTable(s: Summary, variants: Variant[]): string {
  const bare = s.baselines.bare;
  let prev: Summary["steady"][VariantId] | undefined;
  const body: string[][] = [];
  for (const v of variants) {
    const m = s.steady[v.id];
    if (!m) continue;
    body.push([
      v.title,
      String(m.n),
      mib(m.rss),
      mib(m.rssAnon),
      mib(m.pss),
      mib(m.heapUsed, 2),
      mib(m.heapUsedMin, 2),
      mib(m.heapLive, 2),
      mib(m.external, 2),
      signed(m.rss - bare.rss),
      signed(m.rssAnon - bare.rssAnon),
      prev ? signed(m.rss - prev.rss) : "",
      prev ? signed(m.rssAnon - prev.rssAnon) : "",
      prev ? signed(m.heapUsed - prev.heapUsed, 2) : "",
      String(m.threads),
    ]);
    prev = m;
  }
  return table(
    [
      "configuration",
      "runs",
      "RSS",
      "RssAnon",
      "Pss",
      "heap used",
      "heap min",
      "heap live",
      "external",
      "RSS−bare",
      "Anon−bare",
      "marg. RSS",
      "marg. Anon",
      "marg. heap",
      "threads",
    ],
    body,
  );
}

export function burstTable(s: Summary, variants: Variant[]): string {
  const bare = s.baselines.bare;
  const body: string[][] = [];
  for (const v of variants) {
    const p = s.replay[v.id];
    const g = s.growth[v.id];
    if (!p && !g) continue;
    body.push([
      v.title,
      p ? String(Math.round(p.spooled)) : "",
      p ? p.drainS.toFixed(1) : "",
      p ? mib(p.peakRss) : "",
      p ? mib(p.peakRssAnon) : "",
      p ? signed(p.peakRss - bare.rss) : "",
      p ? mib(p.peakHeapUsedSeen, 2) : "",
      p ? cpu(p.drainCpuMsPer1000) : "",
      g ? String(Math.round(g.readings)) : "",
      g ? cpu(g.burstCpuMsPer1000) : "",
      g ? mib(g.rss) : "",
      g ? mib(g.rssAnon) : "",
      g ? mib(g.heapUsed, 2) : "",
      g ? signed(g.heapVsSteady, 2) : "",
      g ? signed(g.heapMinVsSteady, 2) : "",
      g ? signed(g.heapLiveVsSteady, 2) : "",
      g ? signed(g.rssVsSteady) : "",
    ]);
  }
  return table(
    [
      "configuration",
      "spooled",
      "drain s",
      "peak RSS",
      "peak Anon",
      "peak−bare",
      "max heap seen",
      "drain CPU",
      "readings",
      "burst CPU",
      "RSS after",
      "Anon after",
      "heap after",
      "heap−steady",
      "min−steady",
      "live−steady",
      "RSS−steady",
    ],
    body,
  );
}

export interface TargetCheck {
  target: string;
  limit: string;
  measured: string;
  met: boolean | undefined;
}

export function targets(s: Summary, variants: Variant[]): TargetCheck[] {
  const bare = s.baselines.bare;
  const out: TargetCheck[] = [];
  const title = (id: VariantId) => variants.find((v) => v.id === id)?.title ?? id;
  const fmt = (b: number, d = 1) => `${signed(b, d)} MiB`;
  const sim = s.steady.mqtt;
  out.push({
    target: "sim.yaml-like (+ MQTT bus) steady RSS over bare node",
    limit: "<= +16 MiB",
    measured: sim ? fmt(sim.rss - bare.rss) : "n/a",
    met: sim ? sim.rss - bare.rss <= 16 * MiB : undefined,
  });
  const ser = s.steady.serial;
  out.push({
    target: "XMPP + serial, no MQTT, steady RSS over bare node",
    limit: "<= +10 MiB",
    measured: ser ? fmt(ser.rss - bare.rss) : "n/a",
    met: ser ? ser.rss - bare.rss <= 10 * MiB : undefined,
  });
  // Steady state is 1 reading/s (the definition): the load row, at 100/s, is not one.
  const atRest = new Set(variants.filter((v) => v.loadRate === 0).map((v) => v.id));
  const heaps = (Object.entries(s.steady) as [VariantId, NonNullable<Summary["steady"][VariantId]>][]).filter(([id]) =>
    atRest.has(id),
  );
  if (heaps.length > 0) {
    const worst = heaps.reduce((a, b) => (b[1].heapUsed > a[1].heapUsed ? b : a));
    const live = Number.isFinite(worst[1].heapLive) ? `; live after a full GC ${mib(worst[1].heapLive, 2)}` : "";
    out.push({
      target: "heap used at steady state, 1 reading/s (highest configuration)",
      limit: "<= 8 MiB",
      measured: `${mib(worst[1].heapUsed, 2)} MiB (${title(worst[0])}${live})`,
      met: heaps.every(([, m]) => m.heapUsed <= 8 * MiB),
    });
  }
  const peaks = Object.entries(s.replay) as [VariantId, NonNullable<Summary["replay"][VariantId]>][];
  if (peaks.length > 0) {
    const worst = peaks.reduce((a, b) => (b[1].peakRss > a[1].peakRss ? b : a));
    out.push({
      target: "peak RSS during the replay over bare node (highest)",
      limit: "<= +24 MiB",
      measured: `${fmt(worst[1].peakRss - bare.rss)} (${title(worst[0])}, ${Math.round(worst[1].spooled)} readings)`,
      met: peaks.every(([, p]) => p.peakRss - bare.rss <= 24 * MiB),
    });
  }
  const growths = Object.entries(s.growth) as [VariantId, NonNullable<Summary["growth"][VariantId]>][];
  if (growths.length > 0) {
    // The live heap (after a full GC) when the agents reported it; heap used otherwise, which
    // includes garbage and so overstates growth.
    const live = growths.every(([, g]) => Number.isFinite(g.heapLiveVsSteady));
    const d = (g: NonNullable<Summary["growth"][VariantId]>) => (live ? g.heapLiveVsSteady : g.heapVsSteady);
    const worst = growths.reduce((a, b) => (Math.abs(d(b[1])) > Math.abs(d(a[1])) ? b : a));
    out.push({
      target: `${live ? "live heap (after a full GC)" : "heap used"} after the growth readings vs steady (largest difference)`,
      limit: "within 1 MiB",
      measured: `${fmt(d(worst[1]), 2)} (${title(worst[0])}, ${Math.round(worst[1].readings)} readings)`,
      met: growths.every(([, g]) => Math.abs(d(g)) <= MiB),
    });
  }
  const ours = s.baselines["session-ours"].rss;
  const theirs = s.baselines["session-xmppjs"].rss;
  // Any client needs a TLS socket: node holding one, over @xmpp/client, is the lowest ratio possible.
  const floor = s.baselines.tls.rss / theirs;
  out.push({
    target: "XmppSession alone / @xmpp/client (bundled) RSS after warm-up",
    limit: "<= 0.75",
    measured: Number.isFinite(ours / theirs)
      ? `${(ours / theirs).toFixed(2)} (floor: node + 1 TLS socket = ${floor.toFixed(2)})`
      : "n/a",
    met: Number.isFinite(ours / theirs) ? ours / theirs <= 0.75 : undefined,
  });
  return out;
}

export function targetTable(checks: TargetCheck[]): string {
  return table(
    ["target (printed, not asserted)", "limit", "measured", "met"],
    checks.map((c) => [c.target, c.limit, c.measured, c.met === undefined ? "n/a" : c.met ? "yes" : "NO"]),
  );
}
