/**
 * The status command's snapshot: the figures an operator asks for when something looks wrong,
 * gathered from the session, telemetry and the board at the moment of asking.
 */
import type { Timers } from "../../kernel/timers.js";
import type { SessionStats } from "../../xmpp/session.js";
import { type BoardHealthLike, hardwareStatusOf } from "../commands/hal-adapter.js";
import type { MemoryStatus, StatusSnapshot, StatusSource } from "../commands/ports.js";
import { AGENT_VERSION } from "../version.js";

/** What the snapshot reads of telemetry (TelemetryService satisfies it). */
export interface TelemetryStatusLike {
  status():
    | {
        service: string;
        nodes: { telemetry: string; status: string };
        spool: { readings: number; droppedReadings: number };
      }
    | undefined;
  stateText(): string;
}

export interface StatusDeps {
  session: { stats(): SessionStats };
  telemetry: TelemetryStatusLike | undefined;
  board: BoardHealthLike;
  firmwareVersion: () => string | undefined;
  /** xmpp.server as configured (host:port), when set. */
  server: string | undefined;
  /** timers.now() when the agent was composed: uptime counts from there. */
  startedAt: number;
  timers: Pick<Timers, "now">;
  /** The process's memory and its limit (MemoryWatch.snapshot()). */
  memory: () => MemoryStatus;
}

export function statusSource(deps: StatusDeps): StatusSource {
  return {
    async snapshot(): Promise<StatusSnapshot> {
      const st = deps.session.stats();
      const tel = deps.telemetry?.status();
      const firmwareVersion = deps.firmwareVersion();
      return {
        uptimeS: Math.round((deps.timers.now() - deps.startedAt) / 1000),
        agentVersion: AGENT_VERSION,
        ...(firmwareVersion ? { firmwareVersion } : {}),
        memory: deps.memory(),
        link: {
          state: st.state,
          ...(st.onlineSince !== undefined ? { since: st.onlineSince } : {}),
          // The node actually reached (one of xmpp.servers, or what SRV gave), else the configured one.
          ...((st.endpoint ?? deps.server) ? { server: st.endpoint ?? deps.server } : {}),
        },
        streamManagement: { enabled: st.smEnabled, resumes: st.resumes, unacked: st.unacked },
        reconnects: st.disconnects,
        inbound: {
          skipped: st.stanzasSkipped,
          droppedFromStrangers: st.inbound.droppedFromStrangers,
          droppedFromOperators: st.inbound.droppedFromOperators,
          strangerRepliesDropped: st.strangerRepliesDropped,
          ...(st.inbound.topDropped ? { topDropped: st.inbound.topDropped } : {}),
        },
        ...(tel && deps.telemetry
          ? {
              spool: { depth: tel.spool.readings, drops: tel.spool.droppedReadings },
              telemetry: deps.telemetry.stateText(),
              pubsub: { service: tel.service, nodes: [tel.nodes.telemetry, tel.nodes.status] },
            }
          : {}),
        hardware: hardwareStatusOf(deps.board),
      };
    },
  };
}
