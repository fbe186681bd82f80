import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { FileSpoolStore } from "../../agent/telemetry/file-spool.js";
import { MemorySpoolStore } from "../../agent/telemetry/spool.js";
import { spoolStoreContract } from "./spool-store.js";

spoolStoreContract("MemorySpoolStore", async (o) => new MemorySpoolStore(o));

const root = mkdtempSync(join(tmpdir(), "spool-contract-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
for (const fsync of ["always", "interval", "never"] as const) {
  spoolStoreContract(`FileSpoolStore (fsync ${fsync})`, async (o) =>
    FileSpoolStore.open({
      ...o,
      dir: join(root, `s${n++}`),
      fsync,
      segmentBytes: Math.floor((o.maxBytes ?? 1024 * 1024) / 8),
    }),
  );
}
