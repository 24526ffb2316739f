import { fileURLToPath } from "node:url";

/** The captured Lodestar v1.5.1 requests, in shared/ beside the repository (as on CI), unless overridden. */
export const REFERENCE_DIR = process.env.VIGIL_REFERENCE_DIR ?? fileURLToPath(new URL("../../../shared/reference/lodestar-v1.5.1", import.meta.url));
