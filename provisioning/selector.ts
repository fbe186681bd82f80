/**
 * Tags and selectors: how a fleet admin names a group of devices. A device carries tags
 * (`site=greenhouse-2`, `hw=pi4`: one value per key); a selector picks devices by id, by tags
 * (every given tag must match), by enrolment state, or all of them. Pure functions over the store's
 * records, so every command that acts on many devices picks them the same way.
 */
import { ProvisioningError } from "./errors.js";
import type { DeviceRecord, DeviceState, StoreData } from "./store.js";

/** Lower-case key: letters, digits, '.', '_', '-' (1-32), so keys read the same in every shell. */
const TAG_KEY = /^[a-z0-9][a-z0-9._-]{0,31}$/;
/** A value: 1-64 printable characters without spaces, ',' or '='. */
const TAG_VALUE = /^[^\s,=]{1,64}$/;
/** Bounds a record, whatever a script feeds `iot-fleet tag`. */
export const MAX_TAGS_PER_DEVICE = 32;

export type Tags = Record<string, string>;

export interface Selector {
  all?: boolean;
  /** Device ids; each must be in the store. */
  devices?: string[];
  /** Every pair must match. */
  tags?: Tags;
  /** Any of these states. */
  states?: DeviceState[];
  /** Credentials older than this (since enrolment or the last rotation; provisioning if neither). */
  credentialOlderThanMs?: number;
}

export function isTagKey(key: string): boolean {
  return TAG_KEY.test(key);
}

/** "key=value" -> [key, value], or a `usage` error saying what a tag looks like. */
export function parseTag(text: string): [string, string] {
  const eq = text.indexOf("=");
  const key = eq > 0 ? text.slice(0, eq) : "";
  const value = eq > 0 ? text.slice(eq + 1) : "";
  if (!TAG_KEY.test(key) || !TAG_VALUE.test(value))
    throw new ProvisioningError(
      "usage",
      `tag ${JSON.stringify(text)} is not KEY=VALUE (key: 1-32 of a-z 0-9 . _ -, starting with a letter or digit; value: 1-64 characters without spaces, ',' or '=')`,
      { tag: text },
    );
  return [key, value];
}

export function parseTags(texts: readonly string[]): Tags {
  const tags: Tags = {};
  for (const t of texts) {
    const [k, v] = parseTag(t);
    if (k in tags && tags[k] !== v)
      throw new ProvisioningError("usage", `tag ${k} given twice with different values`, { tag: k });
    tags[k] = v;
  }
  return tags;
}

/** Whether the store's `tags` field is well formed (the store's validation uses it). */
export function validTags(v: unknown): v is Tags {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const entries = Object.entries(v);
  return (
    entries.length <= MAX_TAGS_PER_DEVICE &&
    entries.every(([k, val]) => TAG_KEY.test(k) && typeof val === "string" && TAG_VALUE.test(val))
  );
}

export function isEmptySelector(s: Selector): boolean {
  return !s.all && !s.devices?.length && !s.tags && !s.states?.length && s.credentialOlderThanMs === undefined;
}

/** How old a device's credential is: since the last rotation, else enrolment, else provisioning. */
export function credentialAgeMs(d: DeviceRecord, now: Date): number {
  return Math.max(0, now.getTime() - Date.parse(d.rotatedAt ?? d.enrolledAt ?? d.createdAt));
}

/** "--all", "--device a --device b", "--tag site=x --state enrolled": the selector as typed. */
export function describeSelector(s: Selector): string {
  const parts: string[] = [];
  if (s.all) parts.push("--all");
  for (const d of s.devices ?? []) parts.push(`--device ${d}`);
  for (const [k, v] of Object.entries(s.tags ?? {})) parts.push(`--tag ${k}=${v}`);
  for (const st of s.states ?? []) parts.push(`--state ${st}`);
  if (s.credentialOlderThanMs !== undefined) parts.push(`--older-than ${formatDuration(s.credentialOlderThanMs)}`);
  return parts.join(" ") || "(nothing)";
}

/**
 * The devices a selector picks, sorted by id. Named devices must exist (`device_unknown` names the
 * first that does not); the other criteria narrow what is picked.
 */
export function selectDevices(data: StoreData, s: Selector, now: Date = new Date()): DeviceRecord[] {
  for (const id of s.devices ?? [])
    if (!data.devices[id])
      throw new ProvisioningError("device_unknown", `no device "${id}" in the fleet store`, { deviceId: id });
  const ids = s.devices?.length ? new Set(s.devices) : undefined;
  const states = s.states?.length ? new Set(s.states) : undefined;
  const tags = Object.entries(s.tags ?? {});
  return Object.values(data.devices)
    .filter(
      (d) =>
        (!ids || ids.has(d.id)) &&
        (!states || states.has(d.state)) &&
        tags.every(([k, v]) => d.tags?.[k] === v) &&
        (s.credentialOlderThanMs === undefined || credentialAgeMs(d, now) > s.credentialOlderThanMs),
    )
    .sort((a, b) => a.id.localeCompare(b.id));
}

/** Sets and removes tags on one record; returns whether it changed. Bounded by MAX_TAGS_PER_DEVICE. */
export function applyTags(d: DeviceRecord, set: Tags, remove: readonly string[]): boolean {
  const before = JSON.stringify(d.tags ?? {});
  const next: Tags = { ...(d.tags ?? {}) };
  for (const k of remove) delete next[k];
  Object.assign(next, set);
  if (Object.keys(next).length > MAX_TAGS_PER_DEVICE)
    throw new ProvisioningError(
      "usage",
      `device "${d.id}" would have ${Object.keys(next).length} tags (at most ${MAX_TAGS_PER_DEVICE})`,
      { deviceId: d.id },
    );
  const sorted = Object.fromEntries(Object.entries(next).sort(([a], [b]) => a.localeCompare(b)));
  if (JSON.stringify(sorted) === before) return false;
  if (Object.keys(sorted).length === 0) delete d.tags;
  else d.tags = sorted;
  return true;
}

/** 90d, 12h, 30m, 45s: the largest whole unit. */
function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
  ] as const)
    if (ms % size === 0) return `${ms / size}${unit}`;
  return `${Math.round(ms / 1000)}s`;
}

/** "hw=pi4 site=greenhouse-2", or "-". */
export function formatTags(tags: Tags | undefined): string {
  const e = Object.entries(tags ?? {});
  return e.length === 0 ? "-" : e.map(([k, v]) => `${k}=${v}`).join(" ");
}
