/** docs/configuration.md must name every key the schemas accept, and only those. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { it } from "node:test";
import { agentConfigSchema } from "../agent/config/schema.js";
import type { Schema } from "../kernel/schema-dsl.js";

function leaves(s: Schema<unknown>, path: string, out: string[]): string[] {
  if (s.shape) for (const [k, v] of Object.entries(s.shape)) leaves(v, path ? `${path}.${k}` : k, out);
  else if (s.values) leaves(s.values, `${path}.<id>`, out);
  else out.push(path);
  return out;
}

it("docs/configuration.md documents exactly the keys of the config schema", () => {
  const doc = readFileSync(new URL("../docs/configuration.md", import.meta.url), "utf8");
  const documented = new Set([...doc.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!));
  const keys = leaves(agentConfigSchema as Schema<unknown>, "", []);
  assert.deepEqual(
    keys.filter((k) => !documented.has(k)),
    [],
    "keys missing from docs/configuration.md",
  );
  assert.deepEqual(
    [...documented].filter((k) => !keys.includes(k)),
    [],
    "documented keys the schema does not accept",
  );
});
