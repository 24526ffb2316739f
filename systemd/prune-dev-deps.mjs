#!/usr/bin/env node
// Leaves in RELEASE/node_modules only the production dependency tree that RELEASE/package-lock.json records,
// for systemd/install.sh. No npm and no registry: `npm prune --omit=dev --offline` needs registry metadata
// for unmet optional peers (vite's @types/node range), so on a machine with a cold npm cache it failed and
// the release kept its dev tools. The lock file already says which packages are dev-only.
//     node systemd/prune-dev-deps.mjs RELEASE_DIR
// Removes every package directory whose lock entry is `dev: true` or that the lock does not list at all,
// the hidden lock file (stale afterwards) and the .bin links left dangling; then checks that every
// non-optional production package is present. Exits 1 with one line on stderr if anything is off.
import fs from "node:fs";
import path from "node:path";

function fail(message) {
  process.stderr.write(`prune-dev-deps: ${message}\n`);
  process.exit(1);
}

const release = process.argv[2];
if (!release) fail("usage: prune-dev-deps.mjs RELEASE_DIR");
let lock;
try {
  lock = JSON.parse(fs.readFileSync(path.join(release, "package-lock.json"), "utf8"));
} catch (err) {
  fail(`cannot read ${path.join(release, "package-lock.json")}: ${err.message}`);
}
if (!(lock.lockfileVersion >= 2) || typeof lock.packages !== "object") fail("package-lock.json must be lockfileVersion 2 or 3 (npm 7+)");

/** Lock keys ("node_modules/a/node_modules/b") of the production tree. */
const production = new Map();
for (const [key, entry] of Object.entries(lock.packages)) {
  if (!key.startsWith("node_modules/")) continue;
  if (entry.link) fail(`${key} is a link (workspace); releases with workspaces are not supported`);
  if (!entry.dev) production.set(key, entry);
}

let removed = 0;
const remove = (rel) => {
  fs.rmSync(path.join(release, rel), { recursive: true, force: true });
  removed++;
};

/** Prunes the packages in one node_modules directory (`nmRel` relative to the release), depth first. */
function prune(nmRel) {
  for (const name of fs.readdirSync(path.join(release, nmRel))) {
    if (name === ".bin") continue; // links, checked once the packages are gone
    if (name.startsWith(".")) {
      remove(`${nmRel}/${name}`); // .package-lock.json, .cache, …: install state, not code
    } else if (name.startsWith("@")) {
      for (const sub of fs.readdirSync(path.join(release, nmRel, name))) keepOrRemove(`${nmRel}/${name}/${sub}`);
      if (fs.readdirSync(path.join(release, nmRel, name)).length === 0) fs.rmdirSync(path.join(release, nmRel, name));
    } else {
      keepOrRemove(`${nmRel}/${name}`);
    }
  }
  const bin = path.join(release, nmRel, ".bin");
  if (fs.existsSync(bin)) {
    for (const name of fs.readdirSync(bin)) {
      if (!fs.existsSync(path.join(bin, name))) fs.unlinkSync(path.join(bin, name)); // its package was dev-only
    }
  }
}

function keepOrRemove(rel) {
  if (!production.has(rel)) return remove(rel);
  if (fs.existsSync(path.join(release, rel, "node_modules"))) prune(`${rel}/node_modules`);
}

if (!fs.existsSync(path.join(release, "node_modules"))) fail(`${release} has no node_modules`);
prune("node_modules");

// Fail closed: a release missing a production package would only fail at run time.
const missing = [...production].filter(([key, entry]) => !entry.optional && !fs.existsSync(path.join(release, key, "package.json"))).map(([key]) => key);
if (missing.length > 0)
  fail(`production packages missing from node_modules (run npm ci in the checkout): ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", …" : ""}`);
const kept = [...production.keys()].filter((key) => fs.existsSync(path.join(release, key, "package.json"))).length;
console.log(`kept ${kept} production packages; removed ${removed} dev-only or unlisted entries`);
