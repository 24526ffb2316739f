import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = fileURLToPath(import.meta.url);
/** The repository root, whether this module runs from its TypeScript source or from dist/. */
const PROJECT_ROOT = here.endsWith(".ts") ? path.resolve(path.dirname(here), "..") : path.resolve(path.dirname(here), "../..");

/**
 * The URL of a compiled worker script that sits next to the calling module. Worker threads load plain
 * JavaScript, so when the caller itself runs from TypeScript source (vitest), this points at the tsc
 * output in dist/ instead — tests run after `tsc` (the npm test script does both).
 */
export function workerScriptUrl(callerUrl: string, fileName: string): URL {
  if (!callerUrl.endsWith(".ts")) return new URL(`./${fileName}`, callerUrl);
  const relativeDir = path.relative(PROJECT_ROOT, path.dirname(fileURLToPath(callerUrl)));
  return pathToFileURL(path.join(PROJECT_ROOT, "dist", relativeDir, fileName));
}
