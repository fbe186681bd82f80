/** The selector options (--all, --device, --tag, --state) read into a Selector (selector.ts). */
import { isEmptySelector, parseTags, type Selector } from "../selector.js";
import type { DeviceState } from "../store.js";
import { type CommandName, type Options, parseDuration, usageError } from "./args.js";

const STATES: readonly DeviceState[] = ["provisioned", "enrolled", "revoked"];

/**
 * The selector given to `command`. `required`: a command that changes devices refuses an empty one
 * rather than acting on the whole fleet unasked (--all says that).
 */
export function selectorFrom(opts: Options, command: CommandName, required: boolean): Selector {
  const s: Selector = {};
  if (opts.flag("all")) s.all = true;
  const devices = opts.list("device");
  if (devices.length > 0) s.devices = devices;
  if (opts.given("tag")) s.tags = parseTags(opts.list("tag"));
  const states = opts.list("state");
  for (const st of states)
    if (!STATES.includes(st as DeviceState)) throw usageError(`--state ${st}: one of ${STATES.join(", ")}`, command);
  if (states.length > 0) s.states = states as DeviceState[];
  const olderThan = opts.string("older-than");
  if (olderThan !== undefined) s.credentialOlderThanMs = parseDuration(olderThan);
  if (s.all && (s.devices || s.tags || s.states || s.credentialOlderThanMs !== undefined))
    throw usageError("--all selects every device: leave out the other criteria, or --all", command);
  if (required && isEmptySelector(s))
    throw usageError(
      "say which devices: --all, --device ID, --tag KEY=VALUE, --state STATE or --older-than DURATION",
      command,
    );
  return s;
}
