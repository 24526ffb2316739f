// Throw-away certificates for the TLS tests, made with openssl (EC P-256, valid two days).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

/**
 * Writes `<name>.key` and `<name>.crt` (self-signed, subject CN=`commonName`) into `dir`; `subjectAltName`
 * (e.g. "IP:127.0.0.1") makes it usable as a loopback server certificate. Returns the two paths.
 */
export function selfSignedCertificate(dir: string, name: string, commonName: string, subjectAltName?: string): { key: string; cert: string } {
  fs.mkdirSync(dir, { recursive: true });
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.crt`);
  const args = [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "2",
    "-subj",
    `/CN=${commonName}`,
  ];
  if (subjectAltName !== undefined) args.push("-addext", `subjectAltName=${subjectAltName}`);
  execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
  return { key, cert };
}

/** The SHA-256 fingerprint of a certificate as openssl prints it (upper-case hex with colons). */
export function certificateSha256(cert: string): string {
  const out = execFileSync("openssl", ["x509", "-in", cert, "-noout", "-fingerprint", "-sha256"], { stdio: ["ignore", "pipe", "pipe"] }).toString();
  const match = /=([0-9A-F:]+)/.exec(out);
  if (!match) throw new Error(`no fingerprint in openssl's output: ${out}`);
  return match[1]!;
}
