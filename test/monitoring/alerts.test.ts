// The shipped alert rules (deploy/prometheus/vigil-alerts.yml) pass `promtool check rules`, and their unit tests
// (deploy/prometheus/tests/vigil-alerts.test.yml) pass `promtool test rules`: for every alert a series that must
// fire it and one that must not. The unit tests are shown to fail when a rule is broken.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/tmp.js";
import { alertRules, dumpYaml, loadYaml, promtool, promtoolMissing, ROOT, RULES_FILE, RULES_TEST_FILE } from "./assets.js";

const SCRAPE_CONFIG = path.join(ROOT, "deploy/prometheus/prometheus.yml");

if (promtoolMissing) console.warn(`SKIPPING the promtool checks of the alert rules: ${promtoolMissing}`);

interface RuleTest {
  eval_time: string;
  alertname: string;
  exp_alerts?: { exp_labels?: Record<string, string> }[];
}
interface UnitTests {
  rule_files: string[];
  tests: { name?: string; input_series: { series: string }[]; alert_rule_test?: RuleTest[] }[];
}
const unitTests = () => loadYaml(RULES_TEST_FILE) as UnitTests;

/** Runs the shipped unit tests against `rules` (a changed copy of the shipped rules) instead. */
function unitTestsAgainst(rules: string): { status: number | null; output: string } {
  const dir = tempDir("vigil-alerts-");
  const rulesFile = path.join(dir, "rules.yml");
  fs.writeFileSync(rulesFile, rules);
  const tests = { ...unitTests(), rule_files: [rulesFile] };
  fs.writeFileSync(path.join(dir, "tests.yml"), dumpYaml(tests));
  return promtool(["test", "rules", "tests.yml"], dir);
}

describe("alert rules (deploy/prometheus/vigil-alerts.yml)", () => {
  const rules = alertRules();

  it("every alert has a severity (page or warn) and a summary and runbook", () => {
    expect(rules.length).toBeGreaterThan(15);
    for (const r of rules) {
      expect(["page", "warn"], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(r.annotations?.runbook, r.alert).toBeTruthy();
    }
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
  });

  it("every alert has a unit test in which it fires and one in which it must not", () => {
    const evals = unitTests().tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const r of rules) {
      const mine = evals.filter((e) => e.alertname === r.alert);
      expect(
        mine.some((e) => (e.exp_alerts ?? []).length > 0),
        `${r.alert} never fires in ${RULES_TEST_FILE}`,
      ).toBe(true);
      expect(
        mine.some((e) => (e.exp_alerts ?? []).length === 0),
        `${r.alert} has no evaluation where it must stay quiet`,
      ).toBe(true);
    }
    // exp_alerts is matched exactly: the groups with a firing evaluation also hold series that must not fire
    for (const t of unitTests().tests)
      for (const e of t.alert_rule_test ?? [])
        if ((e.exp_alerts ?? []).length > 0 && e.alertname !== "VigilSignerAbsent")
          expect(t.input_series.length, `${t.name}: no series beside the firing one`).toBeGreaterThan((e.exp_alerts ?? []).length);
  });

  it.skipIf(promtoolMissing !== undefined)("promtool check rules accepts them", () => {
    const r = promtool(["check", "rules", RULES_FILE]);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it.skipIf(promtoolMissing !== undefined)("promtool test rules: the unit tests pass", () => {
    const r = promtool(["test", "rules", RULES_TEST_FILE]);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain("SUCCESS");
  });

  it.skipIf(promtoolMissing !== undefined)("the unit tests fail when a rule is broken", () => {
    const shipped = fs.readFileSync(RULES_FILE, "utf8");
    expect(unitTestsAgainst(shipped).status).toBe(0); // the copy itself passes: the failures below are the changes
    const silentAt10Slots = shipped.replace(") > 36", ") > 120");
    expect(silentAt10Slots).not.toBe(shipped);
    const a = unitTestsAgainst(silentAt10Slots);
    expect(a.status).not.toBe(0);
    expect(a.output).toContain("alertname: VigilValidatorSilent");
    // without the "up offset" guard, a series Prometheus sees for the first time looks like a new refusal
    const unguarded = shipped.replaceAll(" and on (job, instance) (up offset 10m == 1)", "");
    expect(unguarded).not.toBe(shipped);
    const b = unitTestsAgainst(unguarded);
    expect(b.status).not.toBe(0);
    expect(b.output).toContain("alertname: VigilSlashingRefusal");
  });

  it("the example scrape config's job names are the ones the rules' up{job=~…} selectors expect", () => {
    const config = loadYaml(SCRAPE_CONFIG) as { scrape_configs: { job_name: string }[]; rule_files: string[] };
    const jobs = config.scrape_configs.map((c) => c.job_name);
    const patterns = rules.flatMap((r) => [...r.expr.matchAll(/up\{job=~"([^"]+)"\}/g)].map((m) => m[1]!));
    expect(new Set(patterns)).toEqual(new Set(["vigil-signer.*", "vigil-watchdog.*"]));
    for (const p of patterns)
      expect(
        jobs.some((j) => new RegExp(`^(?:${p})$`).test(j)),
        `no job for ${p} in ${SCRAPE_CONFIG}`,
      ).toBe(true);
    expect(config.rule_files).toEqual(["vigil-alerts.yml"]);
  });

  it.skipIf(promtoolMissing !== undefined)("promtool check config accepts the example scrape config, with the rules beside it", () => {
    const r = promtool(["check", "config", SCRAPE_CONFIG]);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain("SUCCESS: 1 rule files found");
  });
});
