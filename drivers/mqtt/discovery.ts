/**
 * Home Assistant MQTT discovery (https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery):
 * devices such as Zigbee2MQTT, Tasmota and ESPHome publish retained `<prefix>/<component>/[<node>/]<object>/config`
 * messages describing each entity. We read the parts that help a configured channel: its state
 * topic, the value path in `value_template`, the unit and `expire_after` (staleness). Abbreviated
 * keys (stat_t, unit_of_meas, val_tpl, exp_aft) and the `~` base topic are understood.
 */
import { JSON_PATH_PATTERN } from "./config.js";
import { tryParseJson } from "./payload.js";

export interface DiscoveredEntity {
  /** The discovery topic it came from. */
  configTopic: string;
  component: string;
  stateTopic: string;
  /** JSON path taken from value_template ({{ value_json.temperature }}); undefined: the whole payload. */
  jsonPath?: string;
  unit?: string;
  expireAfterMs?: number;
  deviceClass?: string;
  name?: string;
}

export type DiscoveryResult =
  | { ok: true; entity: DiscoveredEntity }
  /** An empty payload removes an entity (HA convention); nothing to apply. */
  | { ok: true; entity: undefined }
  | { ok: false; reason: "malformed" | "wrong_type"; detail: string };

const ABBREVIATIONS: Record<string, string> = {
  stat_t: "state_topic",
  unit_of_meas: "unit_of_measurement",
  val_tpl: "value_template",
  exp_aft: "expire_after",
  dev_cla: "device_class",
};

/** `<prefix>/<component>/<object>/config` or `<prefix>/<component>/<node>/<object>/config`. */
export function isDiscoveryTopic(prefix: string, topic: string): string | undefined {
  if (!topic.startsWith(`${prefix}/`) || !topic.endsWith("/config")) return undefined;
  const parts = topic.slice(prefix.length + 1).split("/");
  if (parts.length !== 3 && parts.length !== 4) return undefined;
  return parts[0];
}

/** value_json.a.b, value_json['a'], value_json["a"][0] -> a.b / a / a[0]; anything else: undefined. */
export function pathFromTemplate(template: string): string | undefined {
  const m = /\{\{\s*value_json((?:\.[A-Za-z0-9_$@-]+|\[\s*(?:'[^']*'|"[^"]*"|\d+)\s*\])+)\s*(?:\|[^}]*)?\}\}/.exec(
    template,
  );
  if (!m) return undefined;
  const path = m[1]!
    .replace(/\[\s*['"]([^'"]*)['"]\s*\]/g, ".$1")
    .replace(/\[\s*(\d+)\s*\]/g, "[$1]")
    .replace(/^\./, "");
  return JSON_PATH_PATTERN.test(path) ? path : undefined;
}

export function parseDiscovery(configTopic: string, component: string, text: string): DiscoveryResult {
  if (text.trim() === "") return { ok: true, entity: undefined };
  const j = tryParseJson(text);
  if (!j.ok) return { ok: false, reason: "malformed", detail: j.detail };
  if (j.value === null || typeof j.value !== "object" || Array.isArray(j.value))
    return { ok: false, reason: "wrong_type", detail: "discovery payload is not a JSON object" };
  const raw = j.value as Record<string, unknown>;
  const doc: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) doc[ABBREVIATIONS[k] ?? k] = v;
  const base = typeof doc["~"] === "string" ? (doc["~"] as string) : undefined;
  const expand = (t: string) =>
    base === undefined ? t : t.startsWith("~") ? base + t.slice(1) : t.endsWith("~") ? t.slice(0, -1) + base : t;
  if (typeof doc.state_topic !== "string" || doc.state_topic === "")
    return { ok: false, reason: "wrong_type", detail: "no state_topic" };
  const entity: DiscoveredEntity = { configTopic, component, stateTopic: expand(doc.state_topic) };
  if (typeof doc.value_template === "string") {
    const p = pathFromTemplate(doc.value_template);
    if (p !== undefined) entity.jsonPath = p;
  }
  if (typeof doc.unit_of_measurement === "string" && doc.unit_of_measurement !== "")
    entity.unit = doc.unit_of_measurement.slice(0, 32);
  if (typeof doc.expire_after === "number" && Number.isFinite(doc.expire_after) && doc.expire_after > 0)
    entity.expireAfterMs = Math.round(doc.expire_after * 1000);
  if (typeof doc.device_class === "string") entity.deviceClass = doc.device_class;
  if (typeof doc.name === "string") entity.name = doc.name;
  return { ok: true, entity };
}
