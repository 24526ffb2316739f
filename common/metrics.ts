/**
 * prom-client metrics both daemons register the same way.
 */
import client from "prom-client";
import { buildInfo } from "./build-info.js";

/** vigil_build_info{version,commit} = 1: which Vigil a scrape came from. */
export function registerBuildInfo(registry: client.Registry): void {
  new client.Gauge({
    name: "vigil_build_info",
    help: "Always 1; the labels say which Vigil runs: package version and git commit (unknown outside a checkout)",
    labelNames: ["version", "commit"],
    registers: [registry],
    aggregator: "max",
  }).set(buildInfo(), 1);
}

/**
 * A counter whose total is kept elsewhere (a log destination's dropped lines, the audit feed's failed writes): each
 * scrape adds what the total grew by since the last one.
 */
export function registerRunningTotal(registry: client.Registry, name: string, help: string, total: () => number): void {
  let reported = 0;
  new client.Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const now = total();
      if (now > reported) this.inc(now - reported);
      reported = now;
    },
  });
}
