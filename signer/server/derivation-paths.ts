/**
 * The EIP-2334 derivation path of each key imported through the keymanager API (the keystore's `path`), which GET
 * /eth/v1/keystores lists as `derivation_path` as Web3Signer does. The token stores only keys, so the paths live in
 * a small JSON file in the (group's) data directory: public data, written atomically, read fresh on each listing so
 * that every `--workers N` worker sees the others' imports. A key without a known path lists "".
 */
import fs from "node:fs";
import path from "node:path";
import { writeFilePrivateAtomic } from "../../common/index.js";

export class DerivationPaths {
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, "derivation-paths.json");
  }

  /** Every known path by lower-case 0x pubkey (an unreadable file reads as none: the paths are informative only). */
  all(): Map<string, string> {
    try {
      const parsed = JSON.parse(fs.readFileSync(this.file, "utf8")) as Record<string, unknown>;
      return new Map(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === "string"));
    } catch {
      return new Map();
    }
  }

  /** Records paths (an empty path removes the entry). */
  update(changes: Map<string, string>): void {
    if (changes.size === 0) return;
    const all = this.all();
    for (const [pubkey, p] of changes) {
      if (p === "") all.delete(pubkey);
      else all.set(pubkey, p);
    }
    writeFilePrivateAtomic(this.file, `${JSON.stringify(Object.fromEntries([...all].sort()), null, 2)}\n`);
  }
}

/** The `path` of an EIP-2335 keystore JSON ("" when it has none or is not parseable). */
export function keystorePath(json: string): string {
  try {
    const p = (JSON.parse(json) as { path?: unknown }).path;
    return typeof p === "string" ? p : "";
  } catch {
    return "";
  }
}
