/** `status`: a snapshot of the agent (versions, uptime, memory, link, counters, spool, pubsub nodes). */
import type { StatusSource } from "../ports.js";
import { type CommandDefinition, resultForm } from "../registry.js";

export function statusCommand(source: StatusSource): CommandDefinition {
  return {
    node: "status",
    name: "Device status",
    description: "Uptime, versions, memory, XMPP link, stream management and reconnect counters, spool, pubsub nodes",
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
        ]),
      };
    },
  };
}
