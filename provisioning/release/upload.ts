/**
 * Puts a release archive on the XMPP server's HTTP file share (XEP-0363 HTTP File Upload:
 * Prosody's mod_http_file_share, ejabberd's mod_http_upload), so devices download it from the
 * infrastructure the fleet already runs: a slot is asked for over XMPP, the file is PUT to the slot's
 * URL with the headers the server named, and the slot's GET URL is what the `update` command
 * carries. node:https, the bytes streamed from disk.
 */
import { createReadStream, statSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { basename } from "node:path";
import { Element } from "ltx";
import { ProvisioningError } from "../errors.js";
import type { SessionPort } from "../session-port.js";

export const NS_HTTP_UPLOAD = "urn:xmpp:http:upload:0";
/** The only headers XEP-0363 lets a server ask for on the PUT. */
const ALLOWED_HEADERS = new Set(["authorization", "cookie", "expires"]);

export interface UploadOptions {
  session: SessionPort;
  /** The upload service's JID (share.example.org). */
  service: string;
  file: string;
  contentType?: string;
  /** CA certificates (PEM) to trust for the PUT URL besides the system's. */
  ca?: string;
  timeoutMs?: number;
}

export async function uploadFile(o: UploadOptions): Promise<{ getUrl: string; bytes: number; ms: number }> {
  const size = statSync(o.file).size;
  const t0 = Date.now();
  const req = new Element("iq", { type: "get", to: o.service }).c("request", {
    xmlns: NS_HTTP_UPLOAD,
    filename: basename(o.file),
    size: String(size),
    "content-type": o.contentType ?? "application/gzip",
  });
  let answer: Element;
  try {
    answer = await o.session.request(req.root(), { timeoutMs: o.timeoutMs ?? 20_000 });
  } catch (err) {
    throw new ProvisioningError(
      "upload_refused",
      `${o.service} gave no upload slot: ${(err as Error).message}`,
      {
        service: o.service,
        size,
      },
      { cause: err },
    );
  }
  const slot = answer.getChild("slot", NS_HTTP_UPLOAD);
  const put = slot?.getChild("put");
  const getUrl = slot?.getChild("get")?.attrs.url as string | undefined;
  const putUrl = put?.attrs.url as string | undefined;
  if (!putUrl || !getUrl)
    throw new ProvisioningError("upload_refused", `${o.service} answered without a put and a get URL`);
  const headers: Record<string, string | number> = {
    "content-length": size,
    "content-type": o.contentType ?? "application/gzip",
  };
  for (const h of put?.getChildren("header") ?? []) {
    const name = String(h.attrs.name ?? "").toLowerCase();
    if (ALLOWED_HEADERS.has(name)) headers[name] = h.getText().replace(/[\r\n]/g, "");
  }
  const url = new URL(putUrl);
  await new Promise<void>((resolve, reject) => {
    const send = url.protocol === "https:" ? https.request : http.request;
    const r = send(
      url,
      { method: "PUT", headers, ...(o.ca ? { ca: o.ca } : {}), timeout: o.timeoutMs ?? 600_000 },
      (res) => {
        res.resume();
        if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) res.on("end", resolve);
        else
          reject(
            new ProvisioningError(
              "upload_refused",
              `the upload was refused: HTTP ${res.statusCode} ${res.statusMessage ?? ""}`.trim(),
              {
                status: res.statusCode,
              },
            ),
          );
      },
    );
    r.on("timeout", () => r.destroy(new Error("upload timed out")));
    r.on("error", (err) =>
      reject(new ProvisioningError("xmpp_connect", `upload to ${url.host} failed: ${err.message}`, {}, { cause: err })),
    );
    createReadStream(o.file)
      .on("error", (err) => r.destroy(err))
      .pipe(r);
  });
  return { getUrl, bytes: size, ms: Date.now() - t0 };
}
