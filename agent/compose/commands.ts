/**
 * The commands step of the composition root: the audit trail (operators' records and refusals in
 * separate files, so a flood of refusals cannot rotate an operator's record away), the registry
 * (built-ins over the board, plus commands other rooms plug in), the XEP-0050 engine announced in
 * disco, and the presence subscription policy (operators only). Nothing is started here.
 */
import { resolve } from "node:path";
import type { Board } from "../../drivers/board.js";
import type { Logger } from "../../kernel/log.js";
import type { Timers } from "../../kernel/timers.js";
import type { XmppSession } from "../../xmpp/session.js";
import { AdhocCommands, COMMAND_FEATURES } from "../commands/adhoc.js";
import { AuditLog, AuditRouter } from "../commands/audit.js";
import { RefusalThrottle } from "../commands/audit-refusals.js";
import type { Authorizer } from "../commands/authorize.js";
import { registerBuiltins } from "../commands/builtin/index.js";
import { portsFromBoard } from "../commands/hal-adapter.js";
import type { SamplingPort, StatusSource } from "../commands/ports.js";
import { SubscriptionPolicy } from "../commands/presence.js";
import { type CommandDefinition, CommandRegistry } from "../commands/registry.js";
import type { AgentConfig } from "../config/schema.js";

export interface AuditParts {
  /** Every attempt by an operator. */
  log: AuditLog;
  /** Refused requests, throttled per sender. */
  refusalLog: AuditLog;
  refusals: RefusalThrottle;
}

export interface CommandParts {
  commands: AdhocCommands;
  policy: SubscriptionPolicy;
  audit: AuditParts;
}

export interface CommandDeps {
  session: XmppSession;
  board: Board;
  mcuLink: string | undefined;
  authorizer: Authorizer;
  status: StatusSource;
  sampling: SamplingPort | undefined;
  /** Commands other rooms contribute (rotate-credentials for an enrolled device). */
  extra: readonly CommandDefinition[];
  timers: Timers;
  log: Logger;
}

export function composeCommands(config: AgentConfig, deps: CommandDeps): CommandParts {
  const { session, board, mcuLink, timers, log } = deps;
  const audit = composeAudit(config, timers, log);
  const registry = registerBuiltins(new CommandRegistry(), {
    status: deps.status,
    ...(deps.sampling ? { sampling: deps.sampling } : {}),
    ...portsFromBoard(board, { ...(mcuLink ? { mcuLink } : {}), timers, logger: log }),
  });
  for (const command of deps.extra) registry.register(command);
  const commands = new AdhocCommands({
    registry,
    authorizer: deps.authorizer,
    audit: new AuditRouter(audit.log, audit.refusals),
    limits: config.commands,
    timers,
    logger: log,
    ownJid: () => session.jid,
  });
  session.disco.addFeature(...COMMAND_FEATURES);
  for (const node of commands.discoNodes()) session.disco.addNode(node, commands.discoProvider);
  const policy = new SubscriptionPolicy(deps.authorizer, { logger: log });
  return { commands, policy, audit };
}

function composeAudit(config: AgentConfig, timers: Timers, log: Logger): AuditParts {
  const dataDir = config.device.dataDir;
  const { refusals: refusalsConfig, ...auditConfig } = config.commands.audit;
  const refusalLog = new AuditLog({
    path: resolve(dataDir, refusalsConfig.path),
    maxBytes: refusalsConfig.maxBytes,
    maxFiles: refusalsConfig.maxFiles,
    maxPending: auditConfig.maxPending,
    logger: log,
  });
  return {
    log: new AuditLog({ ...auditConfig, path: resolve(dataDir, auditConfig.path), logger: log }),
    refusalLog,
    refusals: new RefusalThrottle({ sink: refusalLog, perSenderPerMinute: refusalsConfig.perSenderPerMinute, timers }),
  };
}
