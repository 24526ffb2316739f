/**
 * The one way Vigil checks a JSON config (signer, watchdog, the `hsm` section): typed reads that name the
 * dotted field at fault (`stacks.backup.beaconNode.url must be an http(s) URL`) and reject unknown keys, since
 * a typo in a safety setting must not silently fall back to a default. Each part passes its own error type
 * (SignerConfigError, WatchdogConfigError, KeystoreConfigError) so exit codes and error codes stay its own.
 */

/** Builds the part's error for `field` (dotted path; "" for the whole file). */
export type SettingError = (field: string, message: string) => Error;

/** `parent.key`, or `key` at the top level. */
export function childField(parent: string, key: string): string {
  return parent ? `${parent}.${key}` : key;
}

/** Checks of one value at a named field: for parsers that pick values out themselves. */
export class SettingChecks {
  constructor(readonly fail: SettingError) {}

  isObject(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
  }

  object(value: unknown, field: string): Record<string, unknown> {
    if (!this.isObject(value)) throw this.fail(field, "must be an object");
    return value;
  }

  /** Anything but `allowed` is a typo or an unsupported setting. */
  onlyKeys(value: Record<string, unknown>, allowed: readonly string[], where: string): void {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) throw this.fail(childField(where, key), "is not a known setting");
    }
  }

  string(value: unknown, field: string): string {
    if (typeof value !== "string" || value === "") throw this.fail(field, "must be a non-empty string");
    return value;
  }

  bool(value: unknown, field: string): boolean {
    if (typeof value !== "boolean") throw this.fail(field, "must be true or false");
    return value;
  }

  int(value: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      throw this.fail(field, `must be an integer between ${min} and ${max}`);
    }
    return value;
  }
}

/**
 * A cursor over one object of the config that remembers its dotted path and which keys were read, so
 * done() can reject the rest.
 */
export class SettingsReader {
  private readonly seen = new Set<string>();
  private readonly check: SettingChecks;

  private constructor(
    private readonly value: Record<string, unknown>,
    readonly path: string,
    private readonly fail: SettingError,
  ) {
    this.check = new SettingChecks(fail);
  }

  static of(value: unknown, path: string, fail: SettingError): SettingsReader {
    return new SettingsReader(new SettingChecks(fail).object(value, path), path, fail);
  }

  field(key: string): string {
    return childField(this.path, key);
  }

  has(key: string): boolean {
    return this.value[key] !== undefined;
  }

  raw(key: string): unknown {
    this.seen.add(key);
    return this.value[key];
  }

  object(key: string, optional = false): SettingsReader {
    const v = this.raw(key);
    if (v === undefined && optional) return new SettingsReader({}, this.field(key), this.fail);
    if (v === undefined) throw this.fail(this.field(key), "is required");
    return SettingsReader.of(v, this.field(key), this.fail);
  }

  string(key: string, fallback?: string): string {
    const v = this.raw(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (v === undefined) throw this.fail(this.field(key), "is required");
    return this.check.string(v, this.field(key));
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
      throw this.fail(this.field(key), "must be an http(s) URL");
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") throw this.fail(this.field(key), "must be an http(s) URL");
    return v.replace(/\/+$/, "");
  }

  int(key: string, fallback: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (v === undefined) throw this.fail(this.field(key), "is required");
    return this.check.int(v, this.field(key), min, max);
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    return this.check.bool(v, this.field(key));
  }

  /** A command as an argv array (no shell: arguments are never re-split or expanded). */
  command(key: string, fallback?: string[]): string[] {
    const v = this.raw(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (v === undefined) throw this.fail(this.field(key), "is required");
    if (!Array.isArray(v) || v.length === 0 || !v.every((a) => typeof a === "string") || v[0] === "") {
      throw this.fail(this.field(key), 'must be a non-empty array of strings (argv, e.g. ["systemctl","is-active","lodestar-vc"])');
    }
    return v as string[];
  }

  stringArray(key: string, fallback?: string[]): string[] {
    const v = this.raw(key);
    if (v === undefined && fallback !== undefined) return fallback;
    if (v === undefined) throw this.fail(this.field(key), "is required");
    if (!Array.isArray(v) || !v.every((a) => typeof a === "string" && a !== "")) {
      throw this.fail(this.field(key), "must be an array of non-empty strings");
    }
    return v as string[];
  }

  enumOf<T extends string>(key: string, allowed: readonly T[], fallback: T): T {
    const v = this.raw(key);
    if (v === undefined) return fallback;
    if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
      throw this.fail(this.field(key), `must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`);
    }
    return v as T;
  }

  keys(): string[] {
    return Object.keys(this.value);
  }

  /** Call after reading every known key: anything left is a typo or an unsupported setting. */
  done(): void {
    for (const key of Object.keys(this.value)) {
      if (!this.seen.has(key)) throw this.fail(this.field(key), "is not a known setting");
    }
  }
}
