/** `status`: a snapshot of the agent (versions, uptime, memory, link, counters, spool, pubsub nodes). */
import type { BackendStatus, StatusSource } from "../ports.js";
import { type CommandDefinition, resultForm } from "../registry.js";

export function statusCommand(source: StatusSource): CommandDefinition {
  return {
    node: "status",
    name: "Device status",
    description:
      "Uptime, versions, memory, XMPP link, stream management and reconnect counters, spool, pubsub nodes, hardware backends",
    async run() {
      const s = await source.snapshot();
      const unknown = "unknown";
      return {
        form: resultForm("Device status", [
          ["uptimeS", "Uptime (s)", Math.round(s.uptimeS)],
          ["agentVersion", "Agent version", s.agentVersion],
          ["firmwareVersion", "Firmware version", s.firmwareVersion ?? unknown],
          ["rssBytes", "Memory RSS (bytes)", s.memory.rssBytes],
          ["heapUsedBytes", "Heap used (bytes)", s.memory.heapUsedBytes],
          ["linkState", "XMPP link", s.link.state],
          [
            "linkSince",
            "Link state since",
            s.link.since === undefined ? unknown : new Date(s.link.since).toISOString(),
          ],
          ["server", "Server", s.link.server ?? unknown],
          [
            "smEnabled",
            "Stream management",
            s.streamManagement ? (s.streamManagement.enabled ? "on" : "off") : unknown,
          ],
          ["smResumes", "Stream resumptions", s.streamManagement?.resumes ?? unknown],
          ["smUnacked", "Unacknowledged stanzas", s.streamManagement?.unacked ?? unknown],
          ["reconnects", "Reconnects", s.reconnects],
          ["spoolDepth", "Spool depth (readings)", s.spool?.depth ?? unknown],
          ["spoolDrops", "Spool drops", s.spool?.drops ?? unknown],
          ["pubsubService", "Pubsub service", s.pubsub?.service ?? unknown],
          ["pubsubNodes", "Pubsub nodes", s.pubsub ? s.pubsub.nodes.join(", ") : unknown],
          ...(s.hardware ?? []).map((b) => [b.id, b.label, describeBackend(b)] as [string, string, unknown]),
        ]),
      };
    },
  };
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
