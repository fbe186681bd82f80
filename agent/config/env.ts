/**
 * Environment overrides for the connection settings, applied to the raw YAML tree before
 * validation, so a bad value from the environment is reported like a bad key in the file
 * (naming the variable instead of a line). Meant for systemd `EnvironmentFile=` and containers.
 */
export const ENV_KEYS = [
  "AGENT_JID",
  "AGENT_PASSWORD",
  "AGENT_PASSWORD_FILE",
  "AGENT_SERVER",
  "AGENT_CA_FILE",
  "AGENT_PUBSUB_SERVICE",
  "AGENT_OPERATORS",
] as const;

export type EnvOverrides = Partial<Record<(typeof ENV_KEYS)[number], string>>;

/** Which config path each variable overrides, for error messages. */
export const ENV_PATHS: Record<(typeof ENV_KEYS)[number], string> = {
  AGENT_JID: "xmpp.jid",
  AGENT_PASSWORD: "xmpp.password",
  AGENT_PASSWORD_FILE: "xmpp.passwordFile",
  AGENT_SERVER: "xmpp.server",
  AGENT_CA_FILE: "xmpp.caFile",
  AGENT_PUBSUB_SERVICE: "pubsub.service",
  AGENT_OPERATORS: "operators",
};

export function pickEnv(env: NodeJS.ProcessEnv): EnvOverrides {
  const out: EnvOverrides = {};
  for (const key of ENV_KEYS) {
    const v = env[key];
    if (v !== undefined && v !== "") out[key] = v;
  }
  return out;
}

function section(tree: Record<string, unknown>, key: string): Record<string, unknown> {
  const cur = tree[key];
  if (typeof cur === "object" && cur !== null && !Array.isArray(cur)) return cur as Record<string, unknown>;
  const fresh: Record<string, unknown> = {};
  tree[key] = fresh;
  return fresh;
}

/** Returns the config paths that came from the environment. */
export function applyEnv(tree: Record<string, unknown>, env: EnvOverrides): Set<string> {
  const applied = new Set<string>();
  const set = (key: keyof EnvOverrides, sec: string, field: string) => {
    const v = env[key];
    if (v === undefined) return;
    section(tree, sec)[field] = v;
    applied.add(ENV_PATHS[key]);
  };
  set("AGENT_JID", "xmpp", "jid");
  set("AGENT_SERVER", "xmpp", "server");
  set("AGENT_CA_FILE", "xmpp", "caFile");
  set("AGENT_PUBSUB_SERVICE", "pubsub", "service");
  // A password from the environment replaces whichever form the file used.
  if (env.AGENT_PASSWORD !== undefined || env.AGENT_PASSWORD_FILE !== undefined) {
    const xmpp = section(tree, "xmpp");
    delete xmpp.password;
    delete xmpp.passwordFile;
    set("AGENT_PASSWORD", "xmpp", "password");
    set("AGENT_PASSWORD_FILE", "xmpp", "passwordFile");
  }
  if (env.AGENT_OPERATORS !== undefined) {
    tree.operators = env.AGENT_OPERATORS.split(",")
      .map((s) => s.trim())
      .filter(Boolean)
      .map((jid) => ({ jid, commands: ["*"] }));
    applied.add("operators");
  }
  return applied;
}
