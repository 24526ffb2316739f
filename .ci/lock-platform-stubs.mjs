#!/usr/bin/env node
// The npm registry reachable here serves only the linux-x64/arm64-gnu builds of rollup's native binaries,
// so `npm install` writes a lock file without the other platforms' optional entries — and `npm ci` then
// refuses that lock as out of sync. This adds those entries back as optional, platform-restricted stubs
// (npm skips them on any other platform without fetching). Run after every `npm install`:
//     node .ci/lock-platform-stubs.mjs
import fs from "node:fs";

const LOCK = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(fs.readFileSync(LOCK, "utf8"));
const platformOf = (suffix) => {
  const [os, cpu, abi] = suffix.split("-");
  const entry = { os: [os], cpu: [cpu === "ia32" ? "ia32" : cpu] };
  if (abi?.includes("musl")) entry.libc = ["musl"];
  else if (os === "linux") entry.libc = ["glibc"];
  return entry;
};

let added = 0;
for (const [path, pkg] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(pkg.optionalDependencies ?? {})) {
    if (!name.startsWith("@rollup/rollup-")) continue;
    const key = `node_modules/${name}`;
    if (lock.packages[key]) continue;
    lock.packages[key] = { version, license: "MIT", optional: true, ...platformOf(name.slice("@rollup/rollup-".length)) };
    added++;
  }
  void path;
}
fs.writeFileSync(LOCK, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`added ${added} platform stub entries to package-lock.json`);
