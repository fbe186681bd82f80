/**
 * Reads a telemetry item's readings as docs/protocol.md ("Telemetry item") specifies them, the
 * way any subscriber would (`iot-fleet watch`): value, unit, time and quality per channel.
 */
import type { Element } from "ltx";
import { NS_TELEMETRY } from "./status-item.js";

export interface WatchedReading {
  device: string;
  channel: string;
  seq: number;
  /** The value as published (text); undefined for a `missing` reading. */
  value?: string;
  unit?: string;
  sampledAt: number;
  quality: "good" | "stale" | "error";
  historical: boolean;
}

const TYPES = new Set(["numeric", "boolean", "string", "missing"]);

/** The readings of one item; children that are not readings are skipped, not fatal. */
export function readReadings(el: Element | undefined): WatchedReading[] {
  if (el?.name !== "readings" || el.attrs.xmlns !== NS_TELEMETRY) return [];
  const device = String(el.attrs.device ?? "");
  const out: WatchedReading[] = [];
  for (const c of el.children) {
    if (typeof c === "string" || !TYPES.has(c.name)) continue;
    const seq = Number(c.attrs.seq);
    const sampledAt = Date.parse(String(c.attrs.timestamp ?? ""));
    const channel = c.attrs.name;
    if (!Number.isInteger(seq) || Number.isNaN(sampledAt) || typeof channel !== "string") continue;
    out.push({
      device,
      channel,
      seq,
      ...(c.name !== "missing" && typeof c.attrs.value === "string" ? { value: c.attrs.value } : {}),
      ...(typeof c.attrs.unit === "string" ? { unit: c.attrs.unit } : {}),
      sampledAt,
      quality: c.attrs.error === "true" ? "error" : c.attrs.stale === "true" ? "stale" : "good",
      historical: c.attrs.historical === "true",
    });
  }
  return out;
}
