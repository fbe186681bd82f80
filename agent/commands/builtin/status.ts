/**
 * `status`: a snapshot of the agent (versions, uptime, memory, link, counters, spool, pubsub nodes,
 * hardware backends), worded for a person reading it in a client: memory in MiB (and against the
 * memory limit), durations as "1h 02m", times in ISO 8601 UTC. Scripts read the hidden field
 * `json`, the same snapshot in bytes, seconds and epoch milliseconds (docs/commands.md).
 */
import type { DataForm } from "../forms.js";
import type { BackendStatus, MemoryStatus, StatusSnapshot, StatusSource } from "../ports.js";
import { type CommandDefinition, resultForm } from "../registry.js";

export function statusCommand(source: StatusSource): CommandDefinition {
  return {
    node: "status",
    name: "Device status",
    description:
      "Uptime, versions, memory, XMPP link, stream management and reconnect counters, spool, pubsub nodes, hardware backends",
    async run() {
      const s = await source.snapshot();
      const form = statusForm(s);
      return { form };
    },
  };
}

export function statusForm(s: StatusSnapshot): DataForm {
  const unknown = "unknown";
  const form = resultForm("Device status", [
    ["uptime", "Uptime", formatDuration(s.uptimeS)],
    ["agentVersion", "Agent version", s.agentVersion],
    ["firmwareVersion", "Firmware version", s.firmwareVersion ?? unknown],
    ["memory", "Memory", describeMemory(s.memory)],
    [
      "link",
      "XMPP link",
      `${s.link.state}${s.link.since === undefined ? "" : ` since ${new Date(s.link.since).toISOString()}`}${s.link.server ? ` (${s.link.server})` : ""}`,
    ],
    [
      "streamManagement",
      "Stream management",
      s.streamManagement
        ? `${s.streamManagement.enabled ? "on" : "off"}; ${s.streamManagement.resumes} resumptions, ${s.streamManagement.unacked} unacknowledged`
        : unknown,
    ],
    ["reconnects", "Reconnects", s.reconnects],
    ["inbound", "Inbound refused", s.inbound ? describeInbound(s.inbound) : unknown],
    [
      "spool",
      "Readings waiting (spool)",
      s.spool ? `${s.spool.depth}${s.spool.drops > 0 ? `; ${s.spool.drops} dropped (spool full)` : ""}` : unknown,
    ],
    ["telemetry", "Telemetry", s.telemetry ?? unknown],
    ["pubsub", "Telemetry nodes", s.pubsub ? `${s.pubsub.nodes.join(", ")} on ${s.pubsub.service}` : unknown],
    ...(s.hardware ?? []).map((b) => [b.id, b.label, describeBackend(b)] as [string, string, unknown]),
  ]);
  form.fields.push({ var: "json", type: "hidden", values: [JSON.stringify(s)] });
  return form;
}

/** "62.1 MiB resident of 96 MiB limit (65%), 9.3 MiB heap used", or "... resident (no limit), ...". */
export function describeMemory(m: MemoryStatus): string {
  const limit =
    m.limitBytes === undefined
      ? "(no limit)"
      : `of ${limitMib(m.limitBytes)} limit (${Math.round((m.rssBytes / m.limitBytes) * 100)}%)`;
  return `${mib(m.rssBytes)} resident ${limit}, ${mib(m.heapUsedBytes)} heap used`;
}

/** "none", or "14 over limits (skipped); 1985 over budget from strangers (most: eve@iot.test, 1985)". */
export function describeInbound(i: NonNullable<StatusSnapshot["inbound"]>): string {
  const parts: string[] = [];
  if (i.skipped > 0) parts.push(`${i.skipped} over limits (skipped)`);
  if (i.droppedFromStrangers > 0) parts.push(`${i.droppedFromStrangers} over budget from strangers`);
  if (i.droppedFromOperators > 0) parts.push(`${i.droppedFromOperators} over budget from operators`);
  if (i.strangerRepliesDropped > 0)
    parts.push(
      `${i.strangerRepliesDropped} ${i.strangerRepliesDropped === 1 ? "reply" : "replies"} to strangers not sent`,
    );
  if (parts.length === 0) return "none";
  const top = i.topDropped ? ` (most: ${i.topDropped.sender}, ${i.topDropped.dropped})` : "";
  return `${parts.join("; ")}${top}`;
}

/** 59 s, 4m 05s, 1h 02m, 3d 04h. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const pad = (n: number) => String(n).padStart(2, "0");
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d ${pad(Math.floor((s % 86_400) / 3600))}h`;
}

/** Bytes as MiB with one decimal ("70.5 MiB"). */
export function mib(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MiB`;
}

/** A limit as it was set: "96 MiB" for MemoryMax=96M, one decimal only when it is not whole MiB. */
function limitMib(bytes: number): string {
  return bytes % 1_048_576 === 0 ? `${bytes / 1_048_576} MiB` : mib(bytes);
}

/** "open; 1204 frames in, 12 requests, 0 reopens; 3 bad CRC, 1 timeout" or "...; no errors". */
export function describeBackend(b: BackendStatus): string {
  const count = ([what, n]: readonly [string, number]) => `${n} ${n === 1 ? singular(what) : what}`;
  const trouble = b.problems.filter(([, n]) => n > 0);
  return [
    b.state,
    ...(b.activity.length > 0 ? [b.activity.map(count).join(", ")] : []),
    trouble.length > 0 ? trouble.map(count).join(", ") : "no errors",
  ].join("; ");
}

/** "frames in" -> "frame in", "timeouts" -> "timeout": the counters' labels are written in the plural. */
function singular(what: string): string {
  const words = what.split(" ");
  const i = words.findIndex((w) => w.length > 3 && w.endsWith("s"));
  if (i >= 0) words[i] = words[i]!.slice(0, -1);
  return words.join(" ");
}
