// js-yaml ships no types and @types/js-yaml is not a dependency: the one call chain-config-worker.ts makes.
declare module "js-yaml" {
  export const FAILSAFE_SCHEMA: unknown;
  export function load(text: string, options?: { schema?: unknown; filename?: string }): unknown;
}
