/**
 * SSZ hashing speed: @chainsafe/ssz hashes with pure-JS SHA-256 (noble) unless told otherwise, and signing roots
 * are most of the signer's main-thread work. Switch to the native hashtree hasher (SIMD), or the WebAssembly
 * as-sha256 one where hashtree has no binary. Same digests, so switching at run time is safe.
 */
let selected: string | undefined;

export async function useFastSszHasher(): Promise<string> {
  if (selected) return selected;
  const { setHasher } = await import("@chainsafe/persistent-merkle-tree");
  try {
    const { hasher } = await import("@chainsafe/persistent-merkle-tree/hasher/hashtree");
    hasher.digest64(new Uint8Array(32), new Uint8Array(32)); // loads the native binding now, not mid-request
    setHasher(hasher);
    selected = "hashtree";
  } catch {
    const { hasher } = await import("@chainsafe/persistent-merkle-tree/hasher/as-sha256");
    setHasher(hasher);
    selected = "as-sha256";
  }
  return selected;
}
