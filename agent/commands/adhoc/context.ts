/** The CommandContext a handler, or a stage computing its parameters, is given. */
import type { Logger } from "../../../kernel/log.js";
import type { CommandContext, CommandDefinition } from "../registry.js";

export function commandContext(
  def: CommandDefinition,
  requester: string,
  logger: Logger,
  signal?: AbortSignal,
): CommandContext {
  return {
    requester,
    node: def.node,
    logger: logger.child({ command: def.node }),
    // Stage parameters are computed outside a run, where nothing aborts: a signal that never fires.
    signal: signal ?? new AbortController().signal,
  };
}
