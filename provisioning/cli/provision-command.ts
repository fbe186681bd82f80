/** `iot-fleet provision DEVICE-ID`: options -> provisionDevice (usecases/provision.ts) -> result lines. */
import { resolve } from "node:path";
import { EXIT } from "../exit-codes.js";
import { type CredentialRequest, provisionDevice } from "../usecases/provision.js";
import { parseTags } from "../selector.js";
import { oneDevice, parseDays, parseDuration, usageError } from "./args.js";
import { type Context, readSecretFile } from "./context.js";
import { describeCredentialPath } from "./format.js";

export async function provisionCommand(ctx: Context, p: string[]): Promise<number> {
  const id = oneDevice(p, "provision");
  const { opts } = ctx;
  const out = opts.string("out");
  if (!out) throw usageError("--out FILE is required", "provision");
  const modes = [opts.flag("invite"), opts.given("invite-token"), opts.flag("admin-password")].filter(Boolean).length;
  if (modes > 1) throw usageError("choose one of --invite, --invite-token, --admin-password", "provision");
  const token = opts.string("invite-token");
  const credential: CredentialRequest =
    token !== undefined
      ? { kind: "invite-token", token }
      : opts.flag("admin-password")
        ? { kind: "admin-password" }
        : { kind: "invite" };
  const validForMs = parseDuration(opts.string("valid-for") ?? "7d");
  const jid = deviceJid(ctx, id);
  const server = ctx.bundleServer();
  const ca = ctx.loadCa();
  const csrFile = opts.string("csr");
  const csrPem = csrFile ? readSecretFile(csrFile, "CSR file") : undefined;
  // Only a CSR makes a certificate, so only then does its validity matter.
  const certDays = csrPem ? parseDays(opts.string("cert-days"), 365, 3650, "--cert-days", "provision") : undefined;
  const bundleFile = resolve(out);
  const r = await provisionDevice(
    {
      id,
      jid,
      credential,
      server,
      csrPem,
      certDays,
      resource: opts.string("resource"),
      tags: opts.given("tag") ? parseTags(opts.list("tag")) : undefined,
      pubsubService: opts.string("pubsub"),
      operators: opts.list("operator"),
      adminJid: ctx.adminJid(),
      validForMs,
      force: opts.flag("force"),
      bundleFile,
    },
    ca,
    ctx.services(),
  );
  ctx.print(
    {
      deviceId: id,
      jid,
      bundle: bundleFile,
      bundleId: r.bundleId,
      credentialPath: r.credentialPath,
      notAfter: r.notAfter,
    },
    `provisioned ${id} (${jid})\n  bundle      ${bundleFile} (0600)\n  credential  ${describeCredentialPath(r.credentialPath)}\n  valid until ${r.notAfter}\n  on device:  iot-agent enroll ${out} --fleet-ca ca.cert.pem`,
  );
  return EXIT.ok;
}

/** --jid as given, or DEVICE-ID at the domain of --domain or of the admin's JID. */
function deviceJid(ctx: Context, id: string): string {
  const jid = ctx.opts.string("jid");
  if (jid) {
    if (!/^[^@/\s]+@[^@/\s]+$/.test(jid)) throw usageError("--jid must be a bare JID (local@domain)", "provision");
    return jid;
  }
  const domain = ctx.opts.string("domain") ?? ctx.adminJid()?.split("@")[1]?.split("/")[0];
  if (!domain) throw usageError("give --jid, --domain or --admin-jid so the device JID can be formed", "provision");
  return `${id.toLowerCase()}@${domain}`;
}
