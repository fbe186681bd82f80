/**
 * The telemetry payload carried in pubsub items: one <readings/> element per batch, in our own
 * namespace. Field model borrowed from the retracted XEP-0323 (field name, value, unit, timestamp,
 * status flags momentary/historical/...); this is NOT XEP-0323 and claims no compliance with it.
 * Documented with examples in docs/protocol.md.
 *
 *   <readings xmlns="urn:xmpp-iot-agent:telemetry:0" device="sim-01" first="101" last="104">
 *     <numeric seq="101" name="temp0" value="21.5" unit="°C" timestamp="2026-01-05T10:00:00.000Z" momentary="true"/>
 *     <boolean seq="102" name="door" value="true" timestamp="..." momentary="true"/>
 *     <string seq="103" name="mode" value="auto" timestamp="..." historical="true" stale="true"/>
 *     <missing seq="104" name="adc1" unit="V" timestamp="..." momentary="true" error="true"/>
 *   </readings>
 *
 * Decoding is strict: anything unexpected is a PayloadError (code "payload_invalid") naming the
 * reason and the offending element, never a half-decoded batch.
 */
import { Element } from "ltx";
import { PayloadError } from "./errors.js";
import { assertBatch, type Reading, type ReadingQuality } from "./reading.js";

export const NS_TELEMETRY = "urn:xmpp-iot-agent:telemetry:0";
/** Upper bound on readings in one payload we agree to decode. */
export const MAX_READINGS_PER_PAYLOAD = 10_000;

const ITEM_ID_RE = /^r-(0|[1-9]\d{0,15})-(0|[1-9]\d{0,15})$/;
const NUMBER_RE = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
const TIMESTAMP_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?Z$/;
const UINT_RE = /^(?:0|[1-9]\d{0,15})$/;
const MIB_RE = /^(?:0|[1-9]\d{0,9})(?:\.\d)?$/;
const FIELD_ELEMENTS = new Set(["numeric", "boolean", "string", "missing"]);

/**
 * Stable pubsub item id of a batch: a re-send of the same batch (same first and last seq) after a
 * failed stream resumption overwrites the item instead of adding a duplicate.
 */
export function itemIdFor(batch: { firstSeq: number; lastSeq: number }): string {
  return `r-${batch.firstSeq}-${batch.lastSeq}`;
}

export function parseItemId(id: string): { firstSeq: number; lastSeq: number } | undefined {
  const m = ITEM_ID_RE.exec(id);
  if (!m) return undefined;
  const firstSeq = Number(m[1]);
  const lastSeq = Number(m[2]);
  if (!Number.isSafeInteger(firstSeq) || !Number.isSafeInteger(lastSeq) || lastSeq < firstSeq) return undefined;
  return { firstSeq, lastSeq };
}

function bad(reason: string, at?: string): never {
  throw new PayloadError("payload_invalid", `invalid telemetry payload: ${reason}${at ? ` (at ${at})` : ""}`, {
    reason,
    ...(at ? { at } : {}),
  });
}

export function formatTimestamp(ms: number): string {
  return new Date(ms).toISOString();
}

export function parseTimestamp(s: string | undefined, at: string): number {
  if (s === undefined || !TIMESTAMP_RE.test(s)) bad("timestamp must be UTC ISO 8601 like 2026-01-05T10:00:00.000Z", at);
  const ms = Date.parse(s);
  if (!Number.isFinite(ms) || new Date(ms).toISOString().slice(0, 19) !== s.slice(0, 19))
    bad("timestamp is not a real date", at);
  return ms;
}

/** Encodes one batch (non-empty, seq strictly increasing) as a <readings/> element. */
export function encodeReadings(readings: readonly Reading[], opts: { device?: string } = {}): Element {
  assertBatch(readings);
  const root = new Element("readings", {
    xmlns: NS_TELEMETRY,
    ...(opts.device ? { device: opts.device } : {}),
    first: String(readings[0]!.seq),
    last: String(readings[readings.length - 1]!.seq),
  });
  for (const r of readings) {
    const v = r.value;
    const name =
      v === null ? "missing" : typeof v === "number" ? "numeric" : typeof v === "boolean" ? "boolean" : "string";
    const attrs: Record<string, string> = { seq: String(r.seq), name: r.channelId };
    if (v !== null) attrs.value = String(v);
    if (r.unit !== undefined) attrs.unit = r.unit;
    attrs.timestamp = formatTimestamp(r.timestamp);
    if (r.historical) attrs.historical = "true";
    else attrs.momentary = "true";
    if (r.quality !== "good") attrs[r.quality] = "true";
    root.c(name, attrs);
  }
  return root;
}

function flag(el: Element, name: string, at: string): boolean {
  const v = el.attrs[name] as string | undefined;
  if (v === undefined || v === "false") return false;
  if (v === "true") return true;
  return bad(`flag ${name} must be "true" or "false"`, at);
}

/** Decodes a <readings/> element; throws PayloadError on anything malformed. */
export function decodeReadings(el: Element): { device?: string; readings: Reading[] } {
  if (el.name !== "readings" || el.attrs.xmlns !== NS_TELEMETRY) bad(`expected <readings xmlns="${NS_TELEMETRY}">`);
  const first = el.attrs.first as string | undefined;
  const last = el.attrs.last as string | undefined;
  if (first === undefined || last === undefined || !UINT_RE.test(first) || !UINT_RE.test(last))
    bad("first and last must be sequence numbers");
  const readings: Reading[] = [];
  for (const child of el.children) {
    if (typeof child === "string") {
      if (child.trim() !== "") bad("text outside the fields");
      continue;
    }
    const at = `<${child.name}> #${readings.length + 1}`;
    if (!FIELD_ELEMENTS.has(child.name) || (child.attrs.xmlns !== undefined && child.attrs.xmlns !== NS_TELEMETRY))
      bad(`unknown element <${child.name}>`, at);
    if (readings.length >= MAX_READINGS_PER_PAYLOAD) bad(`more than ${MAX_READINGS_PER_PAYLOAD} readings`);
    const a = child.attrs as Record<string, string | undefined>;
    if (a.seq === undefined || !UINT_RE.test(a.seq)) bad("seq must be a non-negative integer", at);
    if (a.name === undefined) bad("name is required", at);
    const historical = flag(child, "historical", at);
    const momentary = flag(child, "momentary", at);
    if (historical === momentary) bad("exactly one of momentary and historical must be true", at);
    const stale = flag(child, "stale", at);
    const error = flag(child, "error", at);
    const quality: ReadingQuality = error ? "error" : stale ? "stale" : "good";
    let value: Reading["value"];
    const raw = a.value;
    if (child.name === "missing") {
      if (raw !== undefined) bad("<missing> carries no value", at);
      value = null;
    } else {
      if (raw === undefined) bad("value is required", at);
      if (child.name === "numeric") {
        if (!NUMBER_RE.test(raw)) bad("numeric value must be a decimal number", at);
        value = Number(raw);
      } else if (child.name === "boolean") {
        if (raw !== "true" && raw !== "false") bad('boolean value must be "true" or "false"', at);
        value = raw === "true";
      } else value = raw;
    }
    const r: Reading = {
      seq: Number(a.seq),
      channelId: a.name,
      value,
      timestamp: parseTimestamp(a.timestamp, at),
      quality,
    };
    if (a.unit !== undefined) r.unit = a.unit;
    if (historical) r.historical = true;
    readings.push(r);
  }
  try {
    assertBatch(readings);
  } catch (err) {
    const reason = (err as { context?: { reason?: string } }).context?.reason ?? "invalid reading";
    throw new PayloadError("payload_invalid", `invalid telemetry payload: ${reason}`, { reason }, { cause: err });
  }
  if (String(readings[0]!.seq) !== first || String(readings[readings.length - 1]!.seq) !== last)
    bad("first/last do not match the readings");
  const device = el.attrs.device as string | undefined;
  return device === undefined ? { readings } : { device, readings };
}

// ---------------------------------------------------------------- status

export interface ChannelDescriptor {
  id: string;
  kind: string;
  unit?: string;
  intervalMs?: number;
}

export interface DeviceStatus {
  device: string;
  state: "online" | "offline";
  timestamp: number;
  agentVersion: string;
  firmwareVersion?: string;
  channels: ChannelDescriptor[];
  /** Telemetry as a person reads it ("publishing", "blocked: ...; 2 batches dead-lettered"). */
  telemetry?: string;
  /** Readings in the spool, not yet acknowledged by the server, when published; status item only. */
  spooledReadings?: number;
  /** The agent's resident set and heap used, in MiB to one decimal, when published; status item only. */
  memory?: { rssMiB: number; heapUsedMiB: number };
  /** The last over-the-air update's outcome (docs/update.md); status item only, when there was one. */
  update?: UpdateOutcome;
}

/** `state`: trial (`version` is proving itself), committed, or rolled-back (to `version`; `failed` did not, `reason` says why). */
export interface UpdateOutcome {
  state: "trial" | "committed" | "rolled-back";
  version: string;
  failed?: string;
  reason?: string;
}

/**
 * The status item (node <prefix><id>/status, item id "current"):
 *   <status xmlns="urn:xmpp-iot-agent:telemetry:0" device="sim-01" state="online" timestamp="...">
 *     <agent version="0.1.0"/><firmware version="1.4.2"/>
 *     <memory rss="62.1" heap="9.3" unit="MiB"/>
 *     <telemetry state="publishing" spooled="12"/>
 *     <update state="rolled-back" version="0.2.0" failed="0.3.0" reason="..."/>   (after an update)
 *     <channel name="temp0" kind="analog" unit="°C" interval="1000"/>
 *   </status>
 */
export function encodeStatus(s: DeviceStatus): Element {
  const root = new Element("status", {
    xmlns: NS_TELEMETRY,
    device: s.device,
    state: s.state,
    timestamp: formatTimestamp(s.timestamp),
  });
  root.c("agent", { version: s.agentVersion });
  if (s.firmwareVersion !== undefined) root.c("firmware", { version: s.firmwareVersion });
  if (s.memory !== undefined)
    root.c("memory", { rss: s.memory.rssMiB.toFixed(1), heap: s.memory.heapUsedMiB.toFixed(1), unit: "MiB" });
  if (s.telemetry !== undefined || s.spooledReadings !== undefined)
    root.c("telemetry", {
      ...(s.telemetry !== undefined ? { state: s.telemetry } : {}),
      ...(s.spooledReadings !== undefined ? { spooled: String(s.spooledReadings) } : {}),
    });
  if (s.update !== undefined)
    root.c("update", {
      state: s.update.state,
      version: s.update.version,
      ...(s.update.failed !== undefined ? { failed: s.update.failed } : {}),
      ...(s.update.reason !== undefined ? { reason: s.update.reason } : {}),
    });
  for (const ch of s.channels) {
    root.c("channel", {
      name: ch.id,
      kind: ch.kind,
      ...(ch.unit !== undefined ? { unit: ch.unit } : {}),
      ...(ch.intervalMs !== undefined ? { interval: String(ch.intervalMs) } : {}),
    });
  }
  return root;
}

export function decodeStatus(el: Element): DeviceStatus {
  if (el.name !== "status" || el.attrs.xmlns !== NS_TELEMETRY) bad(`expected <status xmlns="${NS_TELEMETRY}">`);
  const a = el.attrs as Record<string, string | undefined>;
  if (!a.device) bad("status needs a device");
  if (a.state !== "online" && a.state !== "offline") bad("state must be online or offline");
  const agent = el.getChild("agent")?.attrs.version as string | undefined;
  if (!agent) bad("status needs <agent version=...>");
  const fw = el.getChild("firmware")?.attrs.version as string | undefined;
  const memory = decodeMemory(el.getChild("memory"));
  const channels = el.getChildren("channel").map((c, i) => {
    const ca = c.attrs as Record<string, string | undefined>;
    if (!ca.name || !ca.kind) bad("channel needs name and kind", `<channel> #${i + 1}`);
    if (ca.interval !== undefined && !UINT_RE.test(ca.interval)) bad("interval must be ms", `<channel> #${i + 1}`);
    const ch: ChannelDescriptor = { id: ca.name, kind: ca.kind };
    if (ca.unit !== undefined) ch.unit = ca.unit;
    if (ca.interval !== undefined) ch.intervalMs = Number(ca.interval);
    return ch;
  });
  const out: DeviceStatus = {
    device: a.device,
    state: a.state,
    timestamp: parseTimestamp(a.timestamp, "<status>"),
    agentVersion: agent,
    channels,
  };
  if (fw !== undefined) out.firmwareVersion = fw;
  if (memory !== undefined) out.memory = memory;
  // <telemetry/> is optional: items from older agents have none.
  const t = el.getChild("telemetry")?.attrs as Record<string, string | undefined> | undefined;
  if (t?.state !== undefined) out.telemetry = t.state;
  if (t?.spooled !== undefined) {
    if (!UINT_RE.test(t.spooled)) bad("spooled must be a count", "<telemetry>");
    out.spooledReadings = Number(t.spooled);
  }
  // <update/> is optional too: only after an over-the-air update, and not from older agents.
  const u = el.getChild("update")?.attrs as Record<string, string | undefined> | undefined;
  if (u !== undefined) {
    if ((u.state !== "trial" && u.state !== "committed" && u.state !== "rolled-back") || !u.version)
      bad("update needs state (trial, committed, rolled-back) and version", "<update>");
    out.update = {
      state: u.state,
      version: u.version,
      ...(u.failed !== undefined ? { failed: u.failed } : {}),
      ...(u.reason !== undefined ? { reason: u.reason } : {}),
    };
  }
  return out;
}

/** <memory rss="62.1" heap="9.3" unit="MiB"/>, optional: status items of older agents have none. */
function decodeMemory(el: Element | undefined): DeviceStatus["memory"] {
  if (el === undefined) return undefined;
  const a = el.attrs as Record<string, string | undefined>;
  if (a.unit !== "MiB") bad('memory unit must be "MiB"', "<memory>");
  if (a.rss === undefined || !MIB_RE.test(a.rss) || a.heap === undefined || !MIB_RE.test(a.heap))
    bad("memory rss and heap must be MiB like 62.1", "<memory>");
  return { rssMiB: Number(a.rss), heapUsedMiB: Number(a.heap) };
}

/**
 * Presence that makes liveness and capabilities visible to contacts (the lead's session sends it):
 * <presence><status>online: 3 channels, firmware 1.4.2, agent 0.1.0</status><device xmlns=.../></presence>.
 * Offline is the server's unavailable presence when the stream ends, which needs no help from us.
 * No memory figures: presence goes to every subscriber at every change, and the status item has them.
 */
export function buildStatusPresence(s: DeviceStatus): Element {
  const p = new Element("presence");
  const parts = [`${s.channels.length} channel${s.channels.length === 1 ? "" : "s"}`];
  if (s.firmwareVersion) parts.push(`firmware ${s.firmwareVersion}`);
  parts.push(`agent ${s.agentVersion}`);
  // Only news goes into the status text a client shows: plain publishing is the normal case.
  const telemetry = s.telemetry && s.telemetry !== "publishing" ? `; telemetry ${s.telemetry}` : "";
  p.c("status").t(`${s.state}: ${parts.join(", ")}${telemetry}`);
  p.c("device", {
    xmlns: NS_TELEMETRY,
    id: s.device,
    state: s.state,
    agent: s.agentVersion,
    ...(s.firmwareVersion ? { firmware: s.firmwareVersion } : {}),
    channels: String(s.channels.length),
    ...(s.telemetry ? { telemetry: s.telemetry } : {}),
  });
  return p;
}
