/** Bearer tokens read from 0600 files, compared in constant time. Tokens are never logged. */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { ensurePrivateDir, EXIT_CODES, VigilError, writeFilePrivateAtomic } from "../../common/index.js";
import { readSecretFile } from "../../common/index.js";

export class TokenFileError extends VigilError<"TOKEN_FILE"> {
  constructor(message: string) {
    super("TOKEN_FILE", message, EXIT_CODES.pinSourceInsecure);
  }
}

/** A digest of a token: comparing digests keeps the comparison constant-time whatever the lengths. */
export type TokenDigest = Buffer;

export function digestToken(token: string): TokenDigest {
  return crypto.createHash("sha256").update(token, "utf8").digest();
}

export function sameToken(a: TokenDigest, b: TokenDigest): boolean {
  return crypto.timingSafeEqual(a, b);
}

/**
 * Reads a token file (one line). With `create`, a missing file is made with a fresh random token (0600) so
 * a first start works; the operator then copies it to the client. A file readable by others is refused
 * (config/secret-file.ts).
 */
export function readTokenFile(file: string, opts: { create?: boolean; what: string }): TokenDigest {
  if (!fs.existsSync(file)) {
    if (!opts.create) throw new TokenFileError(`${opts.what} token file ${file} does not exist`);
    ensurePrivateDir(path.dirname(file));
    writeFilePrivateAtomic(file, `${crypto.randomBytes(32).toString("hex")}\n`);
  }
  const token = readSecretFile(file, {
    what: `${opts.what} token`,
    error: (refusal) =>
      new TokenFileError(refusal.code === "SECRET_FILE_EMPTY" ? `${opts.what} token file ${file} holds fewer than 16 characters` : refusal.message),
  });
  if (token.length < 16) throw new TokenFileError(`${opts.what} token file ${file} holds fewer than 16 characters`);
  return digestToken(token);
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}
