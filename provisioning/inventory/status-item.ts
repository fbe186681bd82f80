/**
 * Reads a device's status item as docs/protocol.md ("Status item") specifies it, the way any
 * subscriber would: the admin tool is a reader of the wire format, not a part of the agent. Every
 * field but the device and the agent's version is optional (older agents publish fewer).
 */
import type { Element } from "ltx";

export const NS_TELEMETRY = "urn:xmpp-iot-agent:telemetry:0";

export interface StatusItem {
  device: string;
  /** When the device published it (ms since the epoch). */
  publishedAt: number;
  agentVersion: string;
  firmwareVersion?: string;
  channels: Array<{ name: string; kind: string; unit?: string; intervalMs?: number }>;
  telemetry?: string;
  spooledReadings?: number;
  memory?: { rssMiB: number; heapUsedMiB: number };
  /** The last over-the-air update's outcome (docs/update.md), when the device had one. */
  update?: { state: string; version: string; failed?: string; reason?: string };
}

/** The item, or a one-line reason it is not one. */
export function readStatusItem(el: Element | undefined): StatusItem | { invalid: string } {
  if (!el) return { invalid: "no status item" };
  if (el.name !== "status" || el.attrs.xmlns !== NS_TELEMETRY) return { invalid: `not a status item: <${el.name}>` };
  const device = el.attrs.device as string | undefined;
  const agentVersion = el.getChild("agent")?.attrs.version as string | undefined;
  const publishedAt = Date.parse(String(el.attrs.timestamp ?? ""));
  if (!device || !agentVersion || Number.isNaN(publishedAt))
    return { invalid: "status item without device, agent version or timestamp" };
  const out: StatusItem = {
    device,
    publishedAt,
    agentVersion,
    channels: el.getChildren("channel").map((c) => {
      const interval = Number(c.attrs.interval);
      return {
        name: String(c.attrs.name ?? "?"),
        kind: String(c.attrs.kind ?? "?"),
        ...(c.attrs.unit !== undefined ? { unit: String(c.attrs.unit) } : {}),
        ...(Number.isFinite(interval) && c.attrs.interval !== undefined ? { intervalMs: interval } : {}),
      };
    }),
  };
  const fw = el.getChild("firmware")?.attrs.version;
  if (typeof fw === "string") out.firmwareVersion = fw;
  const t = el.getChild("telemetry")?.attrs;
  if (typeof t?.state === "string") out.telemetry = t.state;
  const spooled = Number(t?.spooled);
  if (t?.spooled !== undefined && Number.isInteger(spooled) && spooled >= 0) out.spooledReadings = spooled;
  const m = el.getChild("memory")?.attrs;
  if (m?.unit === "MiB" && Number.isFinite(Number(m.rss)) && Number.isFinite(Number(m.heap)))
    out.memory = { rssMiB: Number(m.rss), heapUsedMiB: Number(m.heap) };
  const u = el.getChild("update")?.attrs;
  if (typeof u?.state === "string" && typeof u.version === "string")
    out.update = {
      state: u.state,
      version: u.version,
      ...(typeof u.failed === "string" ? { failed: u.failed } : {}),
      ...(typeof u.reason === "string" ? { reason: u.reason } : {}),
    };
  return out;
}
