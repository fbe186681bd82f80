/**
 * `iot-fleet` argument parsing: which command, which options (node:util parseArgs, strict), and
 * the checks of single values. Every refusal is a `usage` error (exit 2) carrying the command's help.
 */
import { parseArgs } from "node:util";
import { normaliseFingerprint } from "../ca.js";
import { ProvisioningError } from "../errors.js";
import { HELP } from "./help.js";

const GLOBAL_OPTIONS = {
  help: { type: "boolean", short: "h" },
  home: { type: "string" },
  "passphrase-file": { type: "string" },
  "admin-jid": { type: "string" },
  "admin-password-file": { type: "string" },
  server: { type: "string" },
  "ca-file": { type: "string" },
  pin: { type: "string" },
  timeout: { type: "string" },
  json: { type: "boolean" },
} as const;

/** Picks devices (selector.ts): every command that acts on a group takes these. */
const SELECTOR_OPTIONS = {
  all: { type: "boolean" },
  device: { type: "string", multiple: true },
  tag: { type: "string", multiple: true },
  state: { type: "string", multiple: true },
  "older-than": { type: "string" },
} as const;

/** The bounds of a fleet job (jobs/): exec, update and bulk rotate/revoke. */
const JOB_OPTIONS = {
  concurrency: { type: "string" },
  "device-timeout": { type: "string" },
  wait: { type: "string" },
  "max-failures": { type: "string" },
  batch: { type: "string" },
  poll: { type: "string" },
} as const;

const COMMAND_OPTIONS = {
  "ca init": {
    cn: { type: "string" },
    org: { type: "string" },
    "valid-days": { type: "string" },
    force: { type: "boolean" },
  },
  "ca show": {},
  "release build": { from: { type: "string" }, out: { type: "string", short: "o" } },
  provision: {
    invite: { type: "boolean" },
    "invite-token": { type: "string" },
    "admin-password": { type: "boolean" },
    jid: { type: "string" },
    domain: { type: "string" },
    csr: { type: "string" },
    "cert-days": { type: "string" },
    resource: { type: "string" },
    out: { type: "string", short: "o" },
    pubsub: { type: "string" },
    operator: { type: "string", multiple: true },
    "valid-for": { type: "string" },
    "tls-servername": { type: "string" },
    force: { type: "boolean" },
    tag: { type: "string", multiple: true },
  },
  rotate: {
    ...SELECTOR_OPTIONS,
    ...JOB_OPTIONS,
    "admin-reset": { type: "boolean" },
    out: { type: "string", short: "o" },
    csr: { type: "string" },
    "valid-for": { type: "string" },
  },
  revoke: {
    ...SELECTOR_OPTIONS,
    ...JOB_OPTIONS,
    disable: { type: "boolean" },
    "local-only": { type: "boolean" },
    export: { type: "string" },
  },
  revocations: { out: { type: "string", short: "o" } },
  list: { online: { type: "boolean" }, ...SELECTOR_OPTIONS },
  tag: { untag: { type: "string", multiple: true }, ...SELECTOR_OPTIONS },
  exec: { ...SELECTOR_OPTIONS, ...JOB_OPTIONS },
  update: {
    ...SELECTOR_OPTIONS,
    ...JOB_OPTIONS,
    release: { type: "string" },
    url: { type: "string" },
    share: { type: "string" },
    "allow-downgrade": { type: "boolean" },
  },
  jobs: {},
  watch: {
    ...SELECTOR_OPTIONS,
    seconds: { type: "string" },
    pubsub: { type: "string" },
    "node-prefix": { type: "string" },
  },
  inventory: {
    ...SELECTOR_OPTIONS,
    online: { type: "boolean" },
    offline: { type: "boolean" },
    "spool-over": { type: "string" },
    "agent-below": { type: "string" },
    sort: { type: "string" },
    pubsub: { type: "string" },
    "node-prefix": { type: "string" },
    concurrency: { type: "string" },
  },
  job: { resume: { type: "boolean" }, poll: { type: "string" } },
} as const;

export type CommandName = keyof typeof COMMAND_OPTIONS;
export type OptionName =
  | keyof typeof GLOBAL_OPTIONS
  | { [C in CommandName]: keyof (typeof COMMAND_OPTIONS)[C] }[CommandName];

type RawValues = Record<string, string | boolean | string[] | undefined>;

/** The options given to one command, read by name (a misspelt name does not compile). */
export class Options {
  constructor(private readonly values: RawValues) {}
  string(name: OptionName): string | undefined {
    const v = this.values[name];
    return typeof v === "string" ? v : undefined;
  }
  flag(name: OptionName): boolean {
    return this.values[name] === true;
  }
  list(name: OptionName): string[] {
    const v = this.values[name];
    return Array.isArray(v) ? [...v] : [];
  }
  given(name: OptionName): boolean {
    return this.values[name] !== undefined;
  }
  /** Fills in an option the command line left out (from the environment). */
  fallback(name: OptionName, value: string | undefined): void {
    if (this.values[name] === undefined && value) this.values[name] = value;
  }
}

export type CommandLine =
  /** No command, or the global --help: the overview. `asked` is false for a bare `iot-fleet`. */
  | { kind: "overview"; asked: boolean }
  | { kind: "unknown"; command: string }
  | { kind: "invalid"; command: CommandName; message: string }
  | { kind: "help"; command: CommandName }
  | { kind: "run"; command: CommandName; options: Options; positionals: string[] };

/** Moves global options written before the command word behind it: `--home D list` == `list --home D`. */
function hoistGlobals(argv: string[]): string[] {
  const leading: string[] = [];
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith("--") && argv[i] !== "--help") {
    const name = argv[i]!.slice(2).split("=")[0]!;
    const spec = GLOBAL_OPTIONS[name as keyof typeof GLOBAL_OPTIONS];
    if (!spec) break;
    const takesValue = spec.type === "string" && !argv[i]!.includes("=");
    leading.push(...argv.slice(i, i + (takesValue ? 2 : 1)));
    i += takesValue ? 2 : 1;
  }
  const rest = argv.slice(i);
  const words = isGroup(rest[0]) && rest[1] !== undefined && !rest[1].startsWith("-") ? 2 : rest.length > 0 ? 1 : 0;
  return [...rest.slice(0, words), ...leading, ...rest.slice(words)];
}

/** Commands of two words: `ca init`, `release build`. */
function isGroup(word: string | undefined): boolean {
  return word === "ca" || word === "release";
}

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMAND_OPTIONS, name);
}

export function parseCommandLine(rawArgv: string[]): CommandLine {
  const argv = hoistGlobals(rawArgv);
  const [first, second] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help")
    return { kind: "overview", asked: first !== undefined };
  const command = isGroup(first) && second !== undefined && !second.startsWith("-") ? `${first} ${second}` : first;
  if (!isCommand(command)) return { kind: "unknown", command };
  let parsed: { values: RawValues; positionals: string[] };
  try {
    parsed = parseArgs({
      args: argv.slice(command.includes(" ") ? 2 : 1),
      options: { ...GLOBAL_OPTIONS, ...COMMAND_OPTIONS[command] },
      allowPositionals: true,
      strict: true,
    }) as typeof parsed;
  } catch (err) {
    return { kind: "invalid", command, message: (err as Error).message };
  }
  if (parsed.values.help) return { kind: "help", command };
  return { kind: "run", command, options: new Options(parsed.values), positionals: parsed.positionals };
}

export function usageError(msg: string, command?: CommandName): ProvisioningError {
  return new ProvisioningError("usage", `${msg}${command ? `\n\n${HELP[command]}` : ""}`);
}

export function noPositionals(p: string[], command: CommandName): void {
  if (p.length > 0) throw usageError(`unexpected argument ${JSON.stringify(p[0])}`, command);
}

export function oneDevice(p: string[], command: CommandName): string {
  if (p.length !== 1) throw usageError("exactly one DEVICE-ID is needed", command);
  const id = p[0]!;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(id))
    throw usageError(`DEVICE-ID ${JSON.stringify(id)} must be 1-63 letters, digits, '.', '_' or '-'`, command);
  return id;
}

/** "30m", "12h", "7d", "90s" -> ms (bounded: 1 minute .. 366 days). */
export function parseDuration(s: string): number {
  const m = /^(\d+)([smhd])$/.exec(s.trim());
  if (!m) throw usageError(`not a duration: ${JSON.stringify(s)} (use e.g. 30m, 12h, 7d)`);
  const ms = Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s" | "m" | "h" | "d"];
  if (ms < 60_000 || ms > 366 * 86_400_000) throw usageError(`duration ${s} is out of range (1m .. 366d)`);
  return ms;
}

/** A whole number of days within bounds, or `fallback` when the option is absent. */
export function parseDays(
  raw: string | undefined,
  fallback: number,
  max: number,
  option: string,
  command: CommandName,
): number {
  const days = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(days) || days < 1 || days > max) throw usageError(`${option} must be 1..${max}`, command);
  return days;
}

/** --timeout SECONDS -> ms per network step (default 20 s). */
export function parseTimeout(raw: string | undefined): number {
  if (raw === undefined) return 20_000;
  const s = Number(raw);
  if (!(s > 0 && s <= 600)) throw usageError("--timeout must be 1..600 seconds");
  return s * 1000;
}

export function parsePin(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const pin = normaliseFingerprint(raw);
  if (!pin) throw usageError("--pin must be 64 hex digits (SHA-256 of the server certificate)");
  return pin;
}

/** --server HOST:PORT, IPv6 hosts in brackets. */
export function parseServerAddress(raw: string): { host: string; port: number } {
  const m = /^\[([0-9a-fA-F:]+)\]:(\d+)$/.exec(raw) ?? /^([^:[\]]+):(\d+)$/.exec(raw);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || !(port > 0 && port < 65536)) throw usageError(`--server ${raw} is not HOST:PORT`, "provision");
  return { host: m[1]!, port };
}
