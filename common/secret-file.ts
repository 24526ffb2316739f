/**
 * The one way Vigil reads a secret from a file (HSM PIN, bearer tokens): the file must be a regular file
 * that neither group nor others can access, checked on the open descriptor so the check and the read see
 * the same file. A secret readable by others is a secret already shared, so it is refused, never trusted.
 */
import fs from "node:fs";
import { EXIT_CODES, VigilError } from "./errors.js";

export type SecretFileErrorCode = "SECRET_FILE_UNREADABLE" | "SECRET_FILE_NOT_REGULAR" | "SECRET_FILE_INSECURE" | "SECRET_FILE_EMPTY";

/** Each part rethrows this as its own error (PinSourceError, TokenFileError...) through `options.error`. */
export class SecretFileError extends VigilError<SecretFileErrorCode> {
  constructor(
    code: SecretFileErrorCode,
    message: string,
    readonly file: string,
  ) {
    super(code, message, EXIT_CODES.pinSourceInsecure);
  }
}

export interface ReadSecretFileOptions {
  /** Names the secret in messages: "<what> file <path> ...", e.g. "PIN", "admin token". */
  readonly what: string;
  /** Maps a refusal to the caller's error type; by default the SecretFileError itself is thrown. */
  readonly error?: (refusal: SecretFileError) => Error;
}

/**
 * Returns the file's content without a final newline (editors and `echo` add one; it is never part of a
 * secret). Refuses a missing or unreadable file, a non-regular file, a file with any group/other permission
 * bit, and an empty secret.
 */
export function readSecretFile(file: string, options: ReadSecretFileOptions): string {
  const refuse = (code: SecretFileErrorCode, message: string): Error => {
    const refusal = new SecretFileError(code, message, file);
    return options.error ? options.error(refusal) : refusal;
  };
  const { what } = options;
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch (err) {
    throw refuse("SECRET_FILE_UNREADABLE", `cannot read ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw refuse("SECRET_FILE_NOT_REGULAR", `${what} file ${file} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      throw refuse(
        "SECRET_FILE_INSECURE",
        `${what} file ${file} is accessible by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, "0")}); run chmod 600 on it`,
      );
    }
    const secret = fs.readFileSync(fd, "utf8").replace(/\r?\n$/, "");
    if (secret === "") throw refuse("SECRET_FILE_EMPTY", `${what} file ${file} is empty`);
    return secret;
  } finally {
    fs.closeSync(fd);
  }
}
