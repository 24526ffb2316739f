/**
 * The shipped monitoring assets as data for the tests: the Grafana dashboard's panels and PromQL, the alert
 * rules' expressions, the vigil_* metric names they read, and promtool (Debian package `prometheus`).
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const DASHBOARD_FILE = path.join(ROOT, "deploy/grafana/vigil-dashboard.json");
export const RULES_FILE = path.join(ROOT, "deploy/prometheus/vigil-alerts.yml");
export const RULES_TEST_FILE = path.join(ROOT, "deploy/prometheus/tests/vigil-alerts.test.yml");
/** Grafana 10.4 / 11.x write this dashboard schema version; README and deploy/README.md say so. */
export const GRAFANA_SCHEMA_VERSION = 39;

// js-yaml is in node_modules as @lodestar/config's dependency, without type declarations: the one call we use.
const yaml = createRequire(import.meta.url)("js-yaml") as { load(text: string): unknown; dump(value: unknown): string };
export const loadYaml = (file: string): unknown => yaml.load(fs.readFileSync(file, "utf8"));
export const dumpYaml = (value: unknown): string => yaml.dump(value);

export interface Target {
  refId: string;
  expr: string;
  datasource?: { type?: string; uid?: string };
}
export interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
export interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string }; datasource?: { uid?: string } }[] };
}

export const loadDashboard = (): Dashboard => JSON.parse(fs.readFileSync(DASHBOARD_FILE, "utf8")) as Dashboard;

/** Every panel, those nested in collapsed rows included. */
export function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** The dashboard's PromQL with its template variables replaced by what Grafana could send (to parse it). */
export function substituteVariables(expr: string): string {
  return expr
    .replaceAll("$__rate_interval", "1m")
    .replaceAll("$__interval", "1m")
    .replaceAll("$__range", "1h")
    .replace(/\$\{?(job|instance)\}?/g, ".+");
}

export interface DashboardExpr {
  panel: string;
  expr: string;
}

/** Panel targets, and the selector inside each `label_values(selector, label)` variable query. */
export function dashboardExprs(d: Dashboard): DashboardExpr[] {
  const out: DashboardExpr[] = [];
  for (const p of allPanels(d)) for (const t of p.targets ?? []) out.push({ panel: p.title, expr: t.expr });
  for (const v of d.templating.list) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : v.query.query;
    const m = /^label_values\((.+),\s*\w+\)$/.exec(q);
    if (!m) throw new Error(`variable ${v.name}: only label_values(selector, label) is understood here, not ${q}`);
    out.push({ panel: `variable ${v.name}`, expr: m[1]! });
  }
  return out;
}

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function loadRules(file = RULES_FILE): { groups: { name: string; rules: AlertRule[] }[] } {
  return loadYaml(file) as { groups: { name: string; rules: AlertRule[] }[] };
}

export const alertRules = (): AlertRule[] => loadRules().groups.flatMap((g) => g.rules);

/** The vigil_* names a PromQL expression reads (histogram series keep their _bucket/_sum/_count suffix). */
export function metricNames(expr: string): string[] {
  return [...new Set(expr.match(/\bvigil_[a-z0-9_]+\b/g) ?? [])];
}

/** Each vigil_* selector of an expression, with its {matchers} ("" when it has none). */
export function vigilSelectors(expr: string): { name: string; matchers: string }[] {
  return [...expr.matchAll(/\b(vigil_[a-z0-9_]+)\b(\{[^}]*\})?/g)].map((m) => ({ name: m[1]!, matchers: m[2] ?? "" }));
}

const probe = spawnSync("promtool", ["--version"], { encoding: "utf8" });
/** Why promtool cannot run here, or undefined. In CI (.ci/run installs it) its absence is a failure, not a skip. */
export const promtoolMissing: string | undefined =
  probe.status === 0 ? undefined : `promtool is not installed (${probe.error?.message ?? probe.stderr}); install the Debian package "prometheus"`;
if (promtoolMissing && process.env.CI === "true") throw new Error(promtoolMissing);

export function promtool(args: string[], cwd = ROOT): { status: number | null; output: string } {
  const r = spawnSync("promtool", args, { cwd, encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}
