/**
 * The update step of the composition root (issue 17, docs/update.md): the `update` command and,
 * when this agent is a release on trial, the health check that commits or rolls it back. Only with
 * `update.enabled`, which belongs to an agent started by the releases launcher: both are imported
 * then, so an agent without it loads none of the update room (the installer, which verifies
 * signatures with node-forge, waits further, for the first `update` that carries a release).
 */
import { dirname, join } from "node:path";
import type { Logger } from "../../kernel/log.js";
import type { Timers } from "../../kernel/timers.js";
import { FLEET_CA_FILE } from "../../provisioning/device/credentials.js";
import type { XmppSession } from "../../xmpp/session.js";
import type { AgentConfig } from "../config/schema.js";
import type { CommandDefinition } from "../commands/registry.js";
import type { TelemetryService } from "../telemetry/service.js";
import type { TrialMonitor } from "../update/trial.js";
import { AGENT_VERSION } from "../version.js";

export interface UpdateParts {
  command: CommandDefinition | undefined;
  trial: TrialMonitor | undefined;
}

export interface UpdateDeps {
  session: XmppSession;
  telemetry: () => TelemetryService | undefined;
  restart: (reason: string) => void;
  timers: Timers;
  log: Logger;
}

export async function composeUpdate(config: AgentConfig, deps: UpdateDeps): Promise<UpdateParts> {
  const u = config.update;
  if (!u.enabled) return { command: undefined, trial: undefined };
  const { updateCommand } = await import("../update/command.js");
  const { TrialMonitor } = await import("../update/trial.js");
  const log = deps.log.child({ component: "update" });
  const fleetCaFile =
    u.fleetCaFile ?? (config.xmpp.passwordFile ? join(dirname(config.xmpp.passwordFile), FLEET_CA_FILE) : "");
  const downloadCaFile = u.downloadCaFile ?? config.xmpp.caFile;
  const command = updateCommand({
    dir: u.dir,
    updater: async () => {
      const { Updater } = await import("../update/updater.js");
      return new Updater({
        config: u,
        running: {
          version: AGENT_VERSION,
          node: { abi: process.versions.modules, platform: process.platform, arch: process.arch },
        },
        fleetCaFile,
        ...(downloadCaFile ? { downloadCaFile } : {}),
        log,
        restart: deps.restart,
      });
    },
  });
  const trial = new TrialMonitor({
    config: u,
    version: AGENT_VERSION,
    timers: deps.timers,
    log,
    restart: deps.restart,
    onCommitted: () => void deps.telemetry()?.publishStatus(),
    health: {
      online: () => deps.session.state === "online",
      telemetry: () => {
        const p = deps.telemetry()?.publisher;
        return { publishes: p !== undefined, acknowledged: p?.stats().publishedItems ?? 0 };
      },
    },
  });
  return { command, trial };
}
