import { parseHexBytes, parseSigningRoot, parseUint64 } from "../codec.js";
import { InterchangeError, SlashingDbInputError } from "../errors.js";

/**
 * An EIP-3076 interchange after validation: bytes and bigints. A signing root is null only when absent
 * (unknown: it matches nothing); an all-zero root is kept as 32 zero bytes and compared like any other,
 * so a later request with that same zero root is a repeat (requests are parsed by the same parseSigningRoot).
 */
export interface ParsedInterchange {
  genesisValidatorsRoot: Buffer;
  records: ParsedRecord[];
}
export interface ParsedRecord {
  pubkey: Buffer;
  blocks: { slot: bigint; signingRoot: Buffer | null }[];
  attestations: { source: bigint; target: bigint; signingRoot: Buffer | null }[];
}

export const INTERCHANGE_FORMAT_VERSION = "5";

/**
 * Validates a whole interchange before anything is written, so that import is all or nothing.
 * Every error names the JSON path of the offending value, e.g. `data[2].signed_attestations[0].target_epoch`.
 */
export function parseInterchange(input: unknown): ParsedInterchange {
  let doc = input;
  if (typeof input === "string") {
    try {
      doc = JSON.parse(input);
    } catch (err) {
      throw new InterchangeError("INVALID_INTERCHANGE", "", `not valid JSON: ${(err as Error).message}`);
    }
  }
  const root = object(doc, "(interchange)");
  const metadata = object(root.metadata, "metadata");
  if (metadata.interchange_format_version !== INTERCHANGE_FORMAT_VERSION) {
    throw new InterchangeError(
      "UNSUPPORTED_INTERCHANGE_VERSION",
      "metadata.interchange_format_version",
      `expected "${INTERCHANGE_FORMAT_VERSION}", got ${JSON.stringify(metadata.interchange_format_version)}`,
    );
  }
  const genesisValidatorsRoot = field(() => parseHexBytes(metadata.genesis_validators_root, 32, ""), "metadata.genesis_validators_root");
  const records = array(root.data, "data").map((entry, i) => parseRecord(entry, `data[${i}]`));
  return { genesisValidatorsRoot, records };
}

function parseRecord(entry: unknown, path: string): ParsedRecord {
  const record = object(entry, path);
  const pubkey = field(() => parseHexBytes(record.pubkey, 48, ""), `${path}.pubkey`);
  const blocks = array(record.signed_blocks, `${path}.signed_blocks`).map((raw, j) => {
    const at = `${path}.signed_blocks[${j}]`;
    const block = object(raw, at);
    return {
      slot: uintString(block.slot, `${at}.slot`),
      signingRoot: field(() => parseSigningRoot(block.signing_root, ""), `${at}.signing_root`),
    };
  });
  const attestations = array(record.signed_attestations, `${path}.signed_attestations`).map((raw, j) => {
    const at = `${path}.signed_attestations[${j}]`;
    const att = object(raw, at);
    return {
      source: uintString(att.source_epoch, `${at}.source_epoch`),
      target: uintString(att.target_epoch, `${at}.target_epoch`),
      signingRoot: field(() => parseSigningRoot(att.signing_root, ""), `${at}.signing_root`),
    };
  });
  return { pubkey, blocks, attestations };
}

/** EIP-3076 writes every uint64 as a decimal string; a JSON number is malformed (and may have lost precision). */
function uintString(value: unknown, path: string): bigint {
  if (typeof value !== "string") {
    throw new InterchangeError("INVALID_INTERCHANGE", path, `expected a decimal string, got ${value === undefined ? "nothing" : typeof value}`);
  }
  return field(() => parseUint64(value, ""), path);
}

function field<T>(parse: () => T, path: string): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof SlashingDbInputError) {
      throw new InterchangeError("INVALID_INTERCHANGE", path, err.message.replace(/^: /, ""));
    }
    throw err;
  }
}

function object(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InterchangeError("INVALID_INTERCHANGE", path, "expected a JSON object");
  }
  return value as Record<string, unknown>;
}

function array(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw new InterchangeError("INVALID_INTERCHANGE", path, "expected a JSON array");
  return value;
}
