#!/usr/bin/env bash
# What the app's code weighs on the wire, from a release site built with `--precompress
# --split` (default target/site; or the folder given): the main WASM module raw, gzip -9 and
# brotli as served, and for each lazily loaded route its modules and what a first visit of a
# page of that route fetches of code (main JS, the split loader, main WASM and the route's
# modules, all as brotli). The sign-in and documents pages have no module of their own:
# their first visit is the main code alone. The last line is what visiting every page
# fetches. A site built without --split is all main code.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pkg="${1:-$root/target/site}/pkg"

node - "$pkg" <<'EOF'
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");
const pkg = process.argv[2];
const files = fs.readdirSync(pkg);
/** The one file whose name matches `pattern`, or undefined if `optional` and there is none. */
const one = (pattern, optional = false) => {
  const found = files.filter((name) => pattern.test(name));
  if (found.length === 0 && optional) return undefined;
  if (found.length !== 1) throw new Error(`expected one file like ${pattern} in ${pkg}, found ${found.length}`);
  return found[0];
};
const brotli = (name) => fs.statSync(path.join(pkg, `${name}.br`)).size;
const wasm = one(/^docpulse\.[\w-]+\.wasm$/);
const raw = fs.readFileSync(path.join(pkg, wasm));
const gzip = execFileSync("gzip", ["-9c", path.join(pkg, wasm)], { maxBuffer: 1 << 26 }).length;
console.log(`main WASM: ${raw.length} bytes raw, ${gzip} gzip -9, ${brotli(wasm)} brotli as served`);
// A site built without --split has no loader and no manifest: every page loads all the code.
const loader = one(/^__wasm_split\.[\w-]+\.js$/, true);
const main = brotli(one(/^docpulse\.[\w-]+\.js$/)) + (loader ? brotli(loader) : 0) + brotli(wasm);
console.log(`first visit of the sign-in or documents page: ${main} bytes of code (brotli)`);
const manifestFile = one(/^__wasm_split_manifest\.[\w-]+\.json$/, true);
const manifest = manifestFile ? JSON.parse(fs.readFileSync(path.join(pkg, manifestFile), "utf8")) : {};
const everyModule = new Set();
for (const [route, modules] of Object.entries(manifest).sort()) {
  const own = modules.reduce((sum, module) => sum + brotli(`${module}.wasm`), 0);
  modules.forEach((module) => everyModule.add(module));
  console.log(`${route}: ${modules.length} modules, ${own} bytes brotli; first visit ${main + own} bytes of code`);
}
const all = [...everyModule].reduce((sum, module) => sum + brotli(`${module}.wasm`), main);
console.log(`every page visited: ${all} bytes of code`);
EOF
