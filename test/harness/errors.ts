/**
 * Harness failures are AgentErrors too, so a failing suite prints a stable code plus context
 * (which peer, which port, the tail of its log) instead of a bare "timeout".
 */
import { AgentError } from "../../kernel/errors.js";

export class HarnessError extends AgentError {}
