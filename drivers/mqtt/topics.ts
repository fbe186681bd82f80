/**
 * What the hub keeps per subscribed topic, shared by the channels and outputs on that topic: only
 * the latest payload (a newer one replaces it, counted as `superseded` if nobody read it), parsed
 * lazily and at most once, and the per-topic counters.
 */
import type { MqttLink } from "./link.js";
import { tryParseJson } from "./payload.js";

export interface MqttTopicStats {
  messages: number;
  superseded: number;
  oversize: number;
  malformed: number;
  wrongType: number;
}

export type BadPayload = "malformed" | "wrongType" | "oversize";

export interface TopicState {
  topic: string;
  latest:
    | { text: string; receivedAt: number; consumed: boolean; parsed?: { ok: boolean; value?: unknown } }
    | undefined;
  stats: MqttTopicStats;
  lastLogAt: number;
  /** Watchers of output commands waiting for their confirmation. */
  watchers: Set<(text: string) => void>;
}

/** What a channel or an output needs from the hub that feeds its topic. */
export interface TopicHost {
  readonly link: MqttLink;
  /** Reports a bad payload: counted always, logged at most once a minute per topic. */
  reportBad(t: TopicState, kind: BadPayload, detail: string, who: string): void;
}

export function newTopicState(topic: string): TopicState {
  return {
    topic,
    latest: undefined,
    stats: { messages: 0, superseded: 0, oversize: 0, malformed: 0, wrongType: 0 },
    lastLogAt: 0,
    watchers: new Set(),
  };
}

/** The parsed JSON of a topic's latest payload, parsed at most once per payload (channels of one topic share it). */
export function latestJson(t: TopicState): { ok: true; value: unknown } | { ok: false } {
  const latest = t.latest;
  if (!latest) return { ok: false };
  if (!latest.parsed) {
    const j = tryParseJson(latest.text);
    latest.parsed = j.ok ? { ok: true, value: j.value } : { ok: false };
  }
  return latest.parsed.ok ? { ok: true, value: latest.parsed.value } : { ok: false };
}
