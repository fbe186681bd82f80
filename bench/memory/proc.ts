/**
 * Memory of another process, read from outside through /proc (Linux): no flag, no code and no
 * allocation in the measured process.
 *  - /proc/PID/status: VmRSS = RssAnon + RssFile + RssShmem; VmHWM is the RSS high-water mark.
 *  - /proc/PID/smaps_rollup: Pss, Private_Dirty, Shared_Clean (shared pages of the node binary and
 *    libraries count fully in RSS though other processes map them too).
 *  - /proc/PID/smaps (diagnostics only): RSS per mapping, grouped, to see where anonymous memory is.
 * All sizes in bytes.
 */
import { readFileSync } from "node:fs";

export { readCpuMs } from "../lib/proc.js";

export interface ProcMemory {
  /** Milliseconds since the epoch when read. */
  at: number;
  rss: number;
  rssAnon: number;
  rssFile: number;
  rssShmem: number;
  /** RSS high-water mark of the process so far. */
  hwm: number;
  threads: number;
  /** smaps_rollup (kB fields, converted to bytes): Pss, Pss_Anon, Pss_File, Private_Dirty, Shared_Clean, ... */
  rollup: Record<string, number>;
}

function kbFields(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^(\w+):\s+(\d+) kB$/.exec(line.trim());
    if (m) out[m[1]!] = Number(m[2]) * 1024;
  }
  return out;
}

/** One reading of a live process; throws if it has gone. */
export function readProcMemory(pid: number, withRollup = true): ProcMemory {
  const statusText = readFileSync(`/proc/${pid}/status`, "utf8");
  const st = kbFields(statusText);
  const threads = Number(/^Threads:\s+(\d+)/m.exec(statusText)?.[1] ?? Number.NaN);
  return {
    at: Date.now(),
    rss: st.VmRSS ?? Number.NaN,
    rssAnon: st.RssAnon ?? Number.NaN,
    rssFile: st.RssFile ?? Number.NaN,
    rssShmem: st.RssShmem ?? Number.NaN,
    hwm: st.VmHWM ?? Number.NaN,
    threads,
    rollup: withRollup ? kbFields(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8")) : {},
  };
}

/** VmRSS and RssAnon only (cheap enough to read every 100 ms). */
export function readRss(pid: number): { at: number; rss: number; rssAnon: number } | undefined {
  try {
    const st = kbFields(readFileSync(`/proc/${pid}/status`, "utf8"));
    return { at: Date.now(), rss: st.VmRSS ?? Number.NaN, rssAnon: st.RssAnon ?? Number.NaN };
  } catch {
    return undefined;
  }
}

export interface MappingGroup {
  name: string;
  rss: number;
  anonymous: number;
  privateDirty: number;
  mappings: number;
}

/**
 * RSS per kind of mapping from /proc/PID/smaps: the node binary, each shared library, [heap] (brk:
 * malloc's main arena), [stack], and anonymous mappings (V8's heap spaces, malloc's thread arenas,
 * the pages of big mallocs). Sorted by RSS, largest first.
 */
export function readMappingGroups(pid: number): MappingGroup[] {
  const text = readFileSync(`/proc/${pid}/smaps`, "utf8");
  const groups = new Map<string, MappingGroup>();
  let current: MappingGroup | undefined;
  for (const line of text.split("\n")) {
    const header = /^[0-9a-f]+-[0-9a-f]+\s+\S+\s+\S+\s+\S+\s+\d+\s*(.*)$/.exec(line);
    if (header) {
      const path = header[1]!.trim();
      const name = path === "" ? "(anonymous)" : path.startsWith("[") ? path : path.replace(/^.*\//, "");
      current = groups.get(name);
      if (!current) {
        current = { name, rss: 0, anonymous: 0, privateDirty: 0, mappings: 0 };
        groups.set(name, current);
      }
      current.mappings++;
      continue;
    }
    const m = /^(Rss|Anonymous|Private_Dirty):\s+(\d+) kB$/.exec(line);
    if (m && current) {
      const bytes = Number(m[2]) * 1024;
      if (m[1] === "Rss") current.rss += bytes;
      else if (m[1] === "Anonymous") current.anonymous += bytes;
      else current.privateDirty += bytes;
    }
  }
  return [...groups.values()].sort((a, b) => b.rss - a.rss);
}

/** The figures the benchmark reports for one measurement (medians of a few /proc readings). */
export interface ProcFigures {
  rss: number;
  rssAnon: number;
  rssFile: number;
  pss: number;
  privateDirty: number;
  sharedClean: number;
  hwm: number;
  threads: number;
}

function med(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function procFigures(samples: ProcMemory[]): ProcFigures {
  return {
    rss: med(samples.map((s) => s.rss)),
    rssAnon: med(samples.map((s) => s.rssAnon)),
    rssFile: med(samples.map((s) => s.rssFile)),
    pss: med(samples.map((s) => s.rollup.Pss ?? Number.NaN)),
    privateDirty: med(samples.map((s) => s.rollup.Private_Dirty ?? Number.NaN)),
    sharedClean: med(samples.map((s) => s.rollup.Shared_Clean ?? Number.NaN)),
    hwm: Math.max(...samples.map((s) => s.hwm)),
    threads: med(samples.map((s) => s.threads)),
  };
}

/** n readings `gapMs` apart, medians. */
export async function sampleProc(pid: number, n = 5, gapMs = 200): Promise<ProcFigures> {
  const samples: ProcMemory[] = [];
  for (let i = 0; i < n; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
    samples.push(readProcMemory(pid));
  }
  return procFigures(samples);
}
