// The shipped Grafana dashboard (deploy/grafana/vigil-dashboard.json) is a valid dashboard of the schema
// version it declares: panels with a type, a place on the grid, the templated Prometheus datasource and PromQL
// targets; every selector filtered by the job/instance variables (no instance written in); and every
// expression parses, as promtool checks it inside a generated rule file.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../helpers/tmp.js";
import { allPanels, dashboardExprs, GRAFANA_SCHEMA_VERSION, loadDashboard, promtool, promtoolMissing, substituteVariables, vigilSelectors } from "./assets.js";

if (promtoolMissing) console.warn(`SKIPPING the promtool parse of the dashboard's PromQL: ${promtoolMissing}`);

// Panel types built into Grafana 10.4 / 11 that this dashboard uses.
const PANEL_TYPES = new Set(["row", "timeseries", "stat", "table", "state-timeline"]);
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JavaScript template
const DATASOURCE = { type: "prometheus", uid: "${datasource}" };

describe("Grafana dashboard (deploy/grafana/vigil-dashboard.json)", () => {
  const d = loadDashboard();
  const panels = allPanels(d);

  it(`declares schemaVersion ${GRAFANA_SCHEMA_VERSION}, a uid, and the datasource, job and instance variables`, () => {
    expect(d.schemaVersion).toBe(GRAFANA_SCHEMA_VERSION);
    expect(d.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(d.title).toBeTruthy();
    const vars = new Map(d.templating.list.map((v) => [v.name, v]));
    expect(vars.get("datasource")).toMatchObject({ type: "datasource", query: "prometheus" });
    for (const name of ["job", "instance"]) {
      expect(vars.get(name)?.type, name).toBe("query");
      expect(vars.get(name)?.datasource).toEqual(DATASOURCE);
    }
  });

  it("every panel has a known type, a unique id and a place on the 24-column grid; no two overlap", () => {
    const ids = new Set<number>();
    const cells = new Set<string>();
    for (const p of panels) {
      expect(PANEL_TYPES, `${p.title}: type ${p.type}`).toContain(p.type);
      expect(ids.has(p.id), `${p.title}: id ${p.id} twice`).toBe(false);
      ids.add(p.id);
      const g = p.gridPos;
      for (const v of [g.h, g.w, g.x, g.y]) expect(Number.isInteger(v) && v >= 0, `${p.title}: gridPos ${JSON.stringify(g)}`).toBe(true);
      expect(g.w > 0 && g.h > 0 && g.x + g.w <= 24, `${p.title}: gridPos ${JSON.stringify(g)}`).toBe(true);
      for (let x = g.x; x < g.x + g.w; x++)
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`), `${p.title} overlaps another panel at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
  });

  it("every panel but the rows reads the templated datasource with PromQL targets filtered by $job and $instance", () => {
    const rows = panels.filter((p) => p.type === "row").map((p) => p.title);
    expect(rows).toEqual(["Signer", "Slashing database", "HSM / key store", "Watchdog"]);
    for (const p of panels.filter((q) => q.type !== "row")) {
      expect(p.datasource, p.title).toEqual(DATASOURCE);
      expect(p.targets?.length, `${p.title}: no targets`).toBeGreaterThan(0);
      for (const t of p.targets!) {
        expect(t.datasource, `${p.title} ${t.refId}`).toEqual(DATASOURCE);
        expect(t.expr.trim(), `${p.title} ${t.refId}: no expr`).not.toBe("");
        const selectors = vigilSelectors(t.expr);
        expect(selectors.length, `${p.title}: ${t.expr} reads no vigil_* metric`).toBeGreaterThan(0);
        for (const s of selectors) {
          expect(s.matchers, `${p.title}: ${s.name} not filtered by $job`).toContain('job=~"$job"');
          expect(s.matchers, `${p.title}: ${s.name} not filtered by $instance`).toContain('instance=~"$instance"');
        }
        expect(t.expr, `${p.title}: a written-in instance`).not.toMatch(/instance=~?"(?!\$instance")/);
      }
    }
  });

  it.skipIf(promtoolMissing !== undefined)("every PromQL expression parses (promtool check rules on a generated rule file)", () => {
    const exprs = dashboardExprs(d);
    expect(exprs.length).toBeGreaterThan(30);
    const rules = exprs.map((e, i) => ({ record: `vigil_dashboard:expr_${i}`, expr: substituteVariables(e.expr) }));
    for (const r of rules) expect(r.expr, "a template variable left in").not.toContain("$");
    const file = path.join(tempDir("vigil-dashboard-"), "dashboard-exprs.yml");
    fs.writeFileSync(file, JSON.stringify({ groups: [{ name: "dashboard", rules }] })); // JSON is YAML
    const r = promtool(["check", "rules", file]);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain(`SUCCESS: ${rules.length} rules found`);
    // and it would say so if one did not parse
    fs.writeFileSync(file, JSON.stringify({ groups: [{ name: "dashboard", rules: [{ record: "x:y", expr: "sum by (le (rate(x[1m]))" }] }] }));
    expect(promtool(["check", "rules", file]).status).not.toBe(0);
  });
});
