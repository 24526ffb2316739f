import { WatchdogConfigError } from "./errors.js";

/**
 * A cursor over one JSON object of the config that remembers its dotted path, so every error names the
 * exact field (`stacks.backup.beaconNode.url must be an http(s) URL`). Unknown keys are rejected: a typo
 * in a safety setting must not silently fall back to a default.
 */
export class ConfigObject {
  private readonly seen = new Set<string>();

  constructor(
    private readonly value: Record<string, unknown>,
    readonly path: string,
  ) {}

  static of(value: unknown, path: string): ConfigObject {
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new WatchdogConfigError(path, "must be an object");
    return new ConfigObject(value as Record<string, unknown>, path);
  }

  field(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  has(key: string): boolean {
    return this.value[key] !== undefined;
  }

  raw(key: string): unknown {
    this.seen.add(key);
    return this.value[key];
  }

  object(key: string, optional = false): ConfigObject {
    const v = this.raw(key);
    if (v === undefined && optional) return new ConfigObject({}, this.field(key));
    if (v === undefined) throw new WatchdogConfigError(this.field(key), "is required");
    return ConfigObject.of(v, this.field(key));
  }

  string(key: string, fallback?: string): string {
    const v = this.raw(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (v === undefined) throw new WatchdogConfigError(this.field(key), "is required");
    if (typeof v !== "string" || v === "") throw new WatchdogConfigError(this.field(key), "must be a non-empty string");
    return v;
  }

  optionalString(key: string): string | undefined {
    return this.raw(key) === undefined ? undefined : this.string(key);
  }

  url(key: string): string {
    const v = this.string(key);
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      throw new WatchdogConfigError(this.field(key), "must be an http(s) URL");
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new WatchdogConfigError(this.field(key), "must be an http(s) URL");
    return v.replace(/\/+$/, "");
  }

  int(key: string, fallback: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (v === undefined) throw new WatchdogConfigError(this.field(key), "is required");
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      throw new WatchdogConfigError(this.field(key), `must be an integer between ${min} and ${max}`);
    }
    return v;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v !== "boolean") throw new WatchdogConfigError(this.field(key), "must be true or false");
    return v;
  }

  /** A command as an argv array (no shell: arguments are never re-split or expanded). */
  command(key: string, fallback?: string[]): string[] {
    const v = this.raw(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (v === undefined) throw new WatchdogConfigError(this.field(key), "is required");
    if (!Array.isArray(v) || v.length === 0 || !v.every((a) => typeof a === "string") || v[0] === "") {
      throw new WatchdogConfigError(this.field(key), 'must be a non-empty array of strings (argv, e.g. ["systemctl","is-active","lodestar-vc"])');
    }
    return v as string[];
  }

  stringArray(key: string, fallback?: string[]): string[] {
    const v = this.raw(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (v === undefined) throw new WatchdogConfigError(this.field(key), "is required");
    if (!Array.isArray(v) || !v.every((a) => typeof a === "string" && a !== "")) {
      throw new WatchdogConfigError(this.field(key), "must be an array of non-empty strings");
    }
    return v as string[];
  }

  enumOf<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
      throw new WatchdogConfigError(this.field(key), `must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`);
    }
    return v as T;
  }

  keys(): string[] {
    return Object.keys(this.value);
  }

  /** Call after reading every known key: anything left is a typo or an unsupported setting. */
  done(): void {
    for (const key of Object.keys(this.value)) {
      if (!this.seen.has(key)) throw new WatchdogConfigError(this.field(key), "is not a known setting");
    }
  }
}
