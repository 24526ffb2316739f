// Shared primitives every part may import: typed errors with exit codes, private-file helpers, hex.
export { VigilError, EXIT_CODES } from "./errors.js";
export { PRIVATE_FILE_MODE, PRIVATE_DIR_MODE, ensurePrivateDir, writeFilePrivateAtomic } from "./files.js";
export { isHexOfLength, normalizeHex, hexToBytes, bytesToHex } from "./hex.js";
export { defaultDataDir, defaultSlashingDbPath } from "./defaults.js";
export { workerScriptUrl } from "./workers.js";
