// Locate OpenClaw's bundled modules (shared by make-db.mjs and read-db.mjs).
//
// OpenClaw's dist/ holds ~6700 minified chunks whose file names contain content
// hashes (e.g. session-accessor.sqlite-transcript-write-B3rTdvkb.mjs) and whose
// exports are renamed to one- or two-letter aliases (`appendTranscriptMessage as i`).
// Public plugin-sdk entry points (dist/plugin-sdk/*.js) have stable names and
// export real names; for everything else findExport() scans dist/*.mjs for the
// chunk that *defines* the function and exports it, and returns the function.
//
// Package location: $OPENCLAW_PKG (the unpacked npm package, with its
// node_modules resolvable), else the `openclaw` package resolvable from here.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

function locatePackage() {
  if (process.env.OPENCLAW_PKG) return path.resolve(process.env.OPENCLAW_PKG);
  try { // <pkg>/dist/plugin-sdk/session-store-runtime.js -> <pkg>
    return path.resolve(fileURLToPath(import.meta.resolve("openclaw/plugin-sdk/session-store-runtime")), "../../..");
  } catch {
    throw new Error("openclaw package not found: set OPENCLAW_PKG=<dir of the installed openclaw package>");
  }
}
export const pkgDir = locatePackage();
const distDir = path.join(pkgDir, "dist");

/** Import a dist module by its path relative to dist/ (stable names only). */
export const importDist = (rel) => import(pathToFileURL(path.join(distDir, rel)).href);

let chunks; // [file, source] of every top-level dist/*.mjs chunk, read once
/** Return OpenClaw's own function `name` from whichever hashed chunk defines and exports it.
 *  `hint` (optional): chunk-name prefix preferred when several chunks bundle a copy. */
export async function findExport(name, hint) {
  chunks ??= fs.readdirSync(distDir).filter((f) => f.endsWith(".mjs"))
    .map((f) => [f, fs.readFileSync(path.join(distDir, f), "utf8")]);
  const def = new RegExp(`^(?:async )?function\\*? ${name}\\(`, "m");
  // `export { a as b, name as X, ... }` (minified alias) or `export { name }`.
  const exp = new RegExp(`^export \\{[^}]*\\b${name}(?: as ([\\w$]+))?\\s*[,}]`, "m");
  const hits = chunks.flatMap(([f, src]) => {
    const m = def.test(src) && src.match(exp);
    return m ? [[f, m[1] ?? name]] : [];
  });
  if (hits.length === 0) throw new Error(`OpenClaw dist: no chunk defines and exports ${name}`);
  // Some helpers are bundled into several chunks (identical copies): take the
  // hinted one, else the first by file name, so the choice is deterministic.
  hits.sort(([a], [b]) => a.localeCompare(b));
  const [file, alias] = hits.find(([f]) => hint && f.startsWith(hint + "-")) ?? hits[0];
  const mod = await import(pathToFileURL(path.join(distDir, file)).href);
  if (typeof mod[alias] !== "function") throw new Error(`OpenClaw dist: ${file} export ${alias} is not ${name}`);
  return Object.assign(mod[alias], { chunk: file });
}
