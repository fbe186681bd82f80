/**
 * Loads the agent config: YAML file -> environment overrides -> schema validation -> resolved
 * paths and secrets. Every problem is reported at once, each naming its key and, for keys from
 * the file, its line, so an admin fixes a config in one round trip.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from "yaml";
import { ConfigError } from "../../kernel/errors.js";
import { applyEnv, ENV_PATHS, type EnvOverrides, pickEnv } from "./env.js";
import { type AgentConfig, agentConfigSchema } from "./schema.js";
import { Ctx, formatPath, INVALID, type Issue, type Path } from "../../kernel/schema-dsl.js";

export interface ConfigProblem {
  path: string;
  message: string;
  /** 1-based line in the file, when the key (or its nearest parent) is in the file. */
  line?: number;
  /** The environment variable that supplied the value, when it came from there. */
  env?: string;
}

export interface LoadedConfig {
  config: AgentConfig;
  /** The resolved password; kept apart from `config` so dumping the config never prints it. */
  password: string;
  file: string;
  fromEnv: Set<string>;
}

export function formatProblems(file: string, problems: ConfigProblem[]): string {
  return problems
    .map((p) => {
      const where = p.env ? `${p.env} (${p.path})` : p.line ? `${file}:${p.line}: ${p.path}` : `${file}: ${p.path}`;
      return `  ${where}: ${p.message}`;
    })
    .join("\n");
}

function lineOf(doc: Document, lc: LineCounter, path: Path): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as YamlNode | undefined;
    // getIn returns the value node; for a mapping key we still land on the line of its value.
    if (node && (isScalar(node) || isMap(node) || isSeq(node)) && node.range) {
      return lc.linePos(node.range[0]).line;
    }
    if (n === 0) return undefined;
  }
  return undefined;
}

/** Parses and validates config text. `file` is used for messages and for resolving relative paths. */
export function parseConfig(text: string, file: string, env: EnvOverrides = {}): LoadedConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => ({
      path: "(yaml)",
      message: e.message.split("\n")[0] ?? e.message,
      line: lc.linePos(e.pos[0]).line,
    }));
    throw new ConfigError("config_invalid", `config ${file} is not valid YAML:\n${formatProblems(file, problems)}`, {
      file,
      problems,
    });
  }
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError("config_invalid", `config ${file} must be a YAML mapping at the top level`, { file });
  }
  const tree = raw as Record<string, unknown>;
  const fromEnv = applyEnv(tree, env);

  const ctx = new Ctx();
  const parsed = agentConfigSchema.parse(tree, ctx);
  if (parsed === INVALID || ctx.issues.length > 0) {
    throw invalid(file, ctx.issues, doc, lc, fromEnv);
  }
  const config = parsed;

  const base = dirname(resolve(file));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  config.device.dataDir = abs(config.device.dataDir);
  if (config.xmpp.caFile) config.xmpp.caFile = abs(config.xmpp.caFile);
  if (config.xmpp.passwordFile) config.xmpp.passwordFile = abs(config.xmpp.passwordFile);
  if (config.xmpp.clientCertFile) config.xmpp.clientCertFile = abs(config.xmpp.clientCertFile);
  if (config.xmpp.clientKeyFile) config.xmpp.clientKeyFile = abs(config.xmpp.clientKeyFile);
  config.xmpp.sasl2.tokenFile = abs(config.xmpp.sasl2.tokenFile ?? join(config.device.dataDir, "xmpp-fast-token.json"));
  config.update.dir = abs(config.update.dir);
  if (config.update.fleetCaFile) config.update.fleetCaFile = abs(config.update.fleetCaFile);
  if (config.update.downloadCaFile) config.update.downloadCaFile = abs(config.update.downloadCaFile);
  // Serial device paths: absolute ones (/dev/...) as they are; relative ones (a PTY of the
  // simulator next to the config) relative to the config file, like every other path.
  for (const link of Object.values(config.board.serial)) link.path = abs(link.path);

  let password = config.xmpp.password;
  if (password === undefined && config.xmpp.passwordFile) {
    try {
      password = readFileSync(config.xmpp.passwordFile, "utf8").replace(/\r?\n$/, "");
    } catch (err) {
      throw new ConfigError(
        "config_password_file",
        `cannot read xmpp.passwordFile ${config.xmpp.passwordFile}: ${(err as Error).message}`,
        { file, path: "xmpp.passwordFile" },
        { cause: err },
      );
    }
    if (password.length === 0)
      throw new ConfigError("config_password_file", `xmpp.passwordFile ${config.xmpp.passwordFile} is empty`, { file });
  }
  // Keep the secret out of the object that gets logged or dumped.
  delete config.xmpp.password;
  return { config, password: password ?? "", file, fromEnv };
}

function invalid(file: string, issues: Issue[], doc: Document, lc: LineCounter, fromEnv: Set<string>): ConfigError {
  const envByPath = new Map(Object.entries(ENV_PATHS).map(([k, v]) => [v, k]));
  const problems: ConfigProblem[] = issues.map((i) => {
    const path = formatPath(i.path);
    const envPath = [...fromEnv].find((p) => path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`));
    if (envPath) return { path, message: i.message, env: envByPath.get(envPath) ?? envPath };
    const line = lineOf(doc, lc, i.path);
    return line === undefined ? { path, message: i.message } : { path, message: i.message, line };
  });
  return new ConfigError("config_invalid", `config ${file} is invalid:\n${formatProblems(file, problems)}`, {
    file,
    problems,
  });
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(
      "config_unreadable",
      `cannot read config ${file}: ${(err as Error).message}`,
      { file },
      { cause: err },
    );
  }
  return parseConfig(text, file, pickEnv(env));
}
