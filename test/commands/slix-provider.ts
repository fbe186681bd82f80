/** Starts test/commands/slix_provider.py (a slixmpp ad-hoc command provider, the benchmark baseline). */
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { HarnessError } from "../harness/errors.js";
import { spawnPeer } from "../harness/process.js";
import type { ProsodyHandle } from "../harness/prosody.js";

const SCRIPT = fileURLToPath(new URL("./slix_provider.py", import.meta.url));

export interface SlixProvider {
  jid: string;
  stop(): Promise<void>;
}

export async function startSlixProvider(
  prosody: ProsodyHandle,
  account: string,
  password: string,
  timeoutMs = 10_000,
): Promise<SlixProvider> {
  const proc = spawnPeer(
    "/usr/bin/python3",
    ["-u", SCRIPT, `${account}@${prosody.domain}`, password, prosody.host, String(prosody.port), prosody.caFile ?? "-"],
    { name: `slix-provider:${account}`, stdinPipe: true },
  );
  const jid = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(
      () => reject(new HarnessError("harness.provider_start", `provider not ready:\n${proc.outputTail(20)}`)),
      timeoutMs,
    );
    createInterface({ input: proc.child.stdout! }).on("line", (line) => {
      const m = /^ready (\S+)$/.exec(line);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
    proc.exited.then(() => {
      clearTimeout(t);
      reject(new HarnessError("harness.provider_exited", `provider exited:\n${proc.outputTail(20)}`));
    });
  });
  return {
    jid,
    async stop() {
      proc.child.stdin?.end();
      await proc.stop();
    },
  };
}
