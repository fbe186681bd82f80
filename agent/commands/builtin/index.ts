/** Registers the built-in commands whose ports the composition root provides. */
import type { DriversPort, HardwarePort, McuPort, SamplingPort, StatusSource } from "../ports.js";
import type { CommandRegistry } from "../registry.js";
import { configureChannelCommand } from "./configure-channel.js";
import { listChannelsCommand } from "./list-channels.js";
import { readCommand } from "./read.js";
import { restartDriversCommand } from "./restart-drivers.js";
import { serialCommand } from "./serial-command.js";
import { setOutputCommand } from "./set-output.js";
import { setSamplingCommand } from "./set-sampling.js";
import { statusCommand } from "./status.js";

export interface BuiltinPorts {
  status?: StatusSource;
  hardware?: HardwarePort;
  sampling?: SamplingPort;
  mcu?: McuPort;
  drivers?: DriversPort;
}

/** Commands without their port are left out (and so never listed), rather than failing at run time. */
export function registerBuiltins(registry: CommandRegistry, ports: BuiltinPorts): CommandRegistry {
  if (ports.status) registry.register(statusCommand(ports.status));
  if (ports.hardware) {
    registry.register(listChannelsCommand(ports.hardware));
    registry.register(readCommand(ports.hardware));
    registry.register(setOutputCommand(ports.hardware));
  }
  if (ports.sampling) {
    registry.register(setSamplingCommand(ports.sampling));
    registry.register(configureChannelCommand(ports.sampling));
  }
  if (ports.mcu) registry.register(serialCommand(ports.mcu));
  if (ports.drivers) registry.register(restartDriversCommand(ports.drivers));
  return registry;
}

export const BUILTIN_NODES = [
  "status",
  "list-channels",
  "read",
  "set-output",
  "set-sampling",
  "configure-channel",
  "serial-command",
  "restart-drivers",
] as const;
