/** Typed failures of the benchmark scripts (a child that died, a run that timed out, a bad figure). */
import { AgentError } from "../../kernel/errors.js";

export class BenchError extends AgentError {}
