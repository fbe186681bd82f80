/**
 * Reading a device's certificate signing request (PKCS#10). The CA signs it into a client
 * certificate (ca.ts) and the admin path seals a password to its key (device-key.ts): both go
 * through this one parser, so neither can accept a request the other would refuse.
 */
import forge from "node-forge";
import { ProvisioningError } from "./errors.js";

/**
 * Parses a PEM CSR and checks its self-signature, which proves the requester holds the private
 * key: a certificate or a sealed password must never go to a key copied from someone else's CSR.
 */
export function parseCsr(csrPem: string): forge.pki.CertificateSigningRequest {
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (err) {
    throw new ProvisioningError(
      "csr_invalid",
      "the CSR is not a PEM PKCS#10 request with an RSA key",
      {},
      { cause: err },
    );
  }
  if (!csr.verify()) throw new ProvisioningError("csr_invalid", "the CSR's self-signature does not verify");
  return csr;
}
