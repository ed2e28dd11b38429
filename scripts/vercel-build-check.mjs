// The assertions of scripts/vercel-build-check, in Node because they read JSON and match
// vercel.json's globs. Two commands, both run from the repository root:
//
//   node scripts/vercel-build-check.mjs preflight
//       Before any build: every function file under api/ has its own [[bin]] in the root
//       Cargo.toml. Prints "<file>\t<bin>" per function on stdout.
//   node scripts/vercel-build-check.mjs output <dir holding the Vercel CLI's node_modules>
//       After `vercel build`: .vercel/output has exactly the functions, settings, routes and
//       static files the repository asks for.
//
// Every failed check prints one line on stderr saying what is wrong and how to fix it; the exit
// status is 1 if any failed. Nothing here knows today's file list: it is all derived from api/,
// Cargo.toml and vercel.json.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const root = process.cwd();
const problems = [];
const fail = (message) => problems.push(message);

// Vercel's zero-config rule: every `.rs` file under api/ is a function, except those with a
// path segment starting with `_` or `.` (helpers), and anything in node_modules.
function functionFiles() {
  const found = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      if (entry.name.startsWith("_") || entry.name.startsWith(".")) continue;
      if (entry.name === "node_modules") continue;
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith(".rs")) found.push(rel);
    }
  };
  if (fs.existsSync(path.join(root, "api"))) walk("api");
  return found.sort();
}

function realPath(p) {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

// The bin name this repository's convention gives a function file: `api/threads/[id].rs` ->
// `threads-id`. Only used to suggest a fix.
function suggestedBinName(file) {
  return file
    .replace(/^api\//, "")
    .replace(/\.rs$/, "")
    .replace(/\[\.*([^\]]*)\]/g, "$1")
    .replace(/\//g, "-");
}

// The builder (@vercel/rust) takes a function's binary from the `[[bin]]` whose `path` is the
// file, in the Cargo.toml found from the file's folder upwards, which is the root one here.
// Without one it silently falls back to the file's base name, which builds nothing or, worse,
// another function's binary (`api/chat/[id]/stream.rs` without a [[bin]] -> `stream`).
function binsByFile(files) {
  let metadata;
  try {
    metadata = JSON.parse(
      execFileSync("cargo", ["metadata", "--no-deps", "--format-version", "1"], {
        cwd: root,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        maxBuffer: 64 << 20,
      }),
    );
  } catch (err) {
    const detail = String(err.stderr || err.message).trim().split("\n")[0];
    fail(`cargo metadata failed (${detail}); fix Cargo.toml so \`cargo metadata\` runs`);
    return null;
  }
  const rootManifest = realPath(path.join(root, "Cargo.toml"));
  const owner = metadata.packages.find((p) => realPath(p.manifest_path) === rootManifest);
  const binTargets = (pkg) =>
    pkg.targets.filter((t) => t.kind.includes("bin")).map((t) => ({ ...t, pkg }));
  const rootBins = owner ? binTargets(owner) : [];
  const otherBins = metadata.packages.filter((p) => p !== owner).flatMap(binTargets);
  if (!owner) {
    fail("the root Cargo.toml has no [package]; the Vercel Rust builder reads each function's [[bin]] from it, so add a [package] there");
  }

  const result = new Map();
  for (const file of files) {
    const here = realPath(path.join(root, file));
    const matches = rootBins.filter((t) => realPath(t.src_path) === here);
    if (matches.length === 1) {
      result.set(file, matches[0].name);
      continue;
    }
    if (matches.length > 1) {
      const names = matches.map((t) => t.name).join(", ");
      fail(`${file} is the path of several [[bin]]s in Cargo.toml (${names}); keep exactly one`);
      continue;
    }
    const elsewhere = otherBins.find((t) => realPath(t.src_path) === here);
    const fix = `add [[bin]] name = "${suggestedBinName(file)}" path = "${file}" to the root Cargo.toml`;
    if (elsewhere) {
      const manifest = path.relative(root, elsewhere.pkg.manifest_path);
      fail(`${file} has its [[bin]] in ${manifest}, but the Vercel Rust builder only reads the root Cargo.toml; ${fix}`);
    } else {
      fail(`${file} has no [[bin]] in Cargo.toml; ${fix} (or rename it _${path.basename(file)} if it is not a function)`);
    }
  }
  return { bins: result, targetDir: metadata.target_directory };
}

function finish() {
  for (const p of problems) console.error(`vercel-build-check: ${p}`);
  process.exit(problems.length ? 1 : 0);
}

function preflight() {
  const files = functionFiles();
  if (files.length === 0) fail("no function files: api/**/*.rs is empty");
  const found = binsByFile(files);
  if (problems.length === 0) {
    for (const file of files) console.log(`${file}\t${found.bins.get(file)}`);
  }
  finish();
}

function readJson(rel) {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, rel), "utf8"));
  } catch (err) {
    fail(`cannot read ${rel} (${err.message})`);
    return null;
  }
}

function listFiles(dir) {
  const out = [];
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(child);
      else out.push(child);
    }
  };
  if (fs.existsSync(dir)) walk("");
  return out.sort();
}

// Folders named `*.func` under the output's functions/ (a function folder is not searched
// further: it may hold files of its own).
function builtFunctions(dir) {
  const out = [];
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.name.endsWith(".func")) out.push(child);
      else walk(child);
    }
  };
  if (fs.existsSync(dir)) walk("");
  return out.sort();
}

// Vercel's routing, reduced to what these checks need: requests first try the filesystem (the
// functions and static files), then the routes after `{handle: "filesystem"}` in order. The
// first route whose `src` matches decides. Returns the destination with `$n` filled in, or the
// status of a route that answers by itself (e.g. 404).
function route(routes, pathname) {
  const start = routes.findIndex((r) => r.handle === "filesystem");
  for (const r of routes.slice(start + 1)) {
    if (r.handle) break;
    if (!r.src) continue;
    const m = new RegExp(r.src).exec(pathname);
    if (!m) continue;
    if (r.dest === undefined) return { status: r.status ?? 200 };
    return { dest: r.dest.replace(/\$(\d+)/g, (_, n) => m[Number(n)] ?? "") };
  }
  return null;
}

const describe = (hit) =>
  hit === null ? "no route" : hit.dest !== undefined ? `"${hit.dest}"` : `status ${hit.status}`;

function output(cliDir) {
  const out = path.join(root, ".vercel/output");
  const vercelJson = readJson("vercel.json") ?? {};
  const files = functionFiles();
  const found = binsByFile(files);
  const config = readJson(".vercel/output/config.json");
  if (!found || !config) finish();

  // Glob matching as the CLI does it: minimatch, from the CLI's own install.
  let minimatch;
  try {
    const mm = createRequire(path.join(cliDir, "package.json"))("minimatch");
    minimatch = mm.minimatch ?? mm.default ?? mm;
  } catch (err) {
    fail(`minimatch not found beside the Vercel CLI in ${cliDir} (${err.message}); the check needs it to read vercel.json's globs`);
    finish();
  }
  // A function takes the settings of the FIRST `functions` key equal to its path or matching it.
  const functions = vercelJson.functions ?? {};
  const settingsFor = (file) => {
    const key = Object.keys(functions).find((k) => k === file || minimatch(file, k));
    return key === undefined ? { key: null, fn: {} } : { key, fn: functions[key] };
  };

  // 1. Exactly one function per file.
  const functionsDir = path.join(out, "functions");
  const expected = new Map(files.map((f) => [f.replace(/\.rs$/, ".func"), f]));
  const built = builtFunctions(functionsDir);
  for (const func of built) {
    if (!expected.has(func)) {
      fail(`.vercel/output/functions/${func} has no source ${func.replace(/\.func$/, ".rs")}; something other than api/**/*.rs is being deployed as a function (a vercel.json "builds"/"functions" entry, or a non-Rust file under api/): remove it`);
    }
  }
  const targetRel = path.relative(root, found.targetDir);
  for (const [func, file] of expected) {
    const dir = path.join(functionsDir, func);
    if (!built.includes(func)) {
      fail(`${file} was not built into .vercel/output/functions/${func}; check that vercel.json does not exclude it and that no path segment starts with "_" or "."`);
      continue;
    }
    let vc;
    try {
      vc = JSON.parse(fs.readFileSync(path.join(dir, ".vc-config.json"), "utf8"));
    } catch (err) {
      fail(`${file}: cannot read its .vc-config.json (${err.message})`);
      continue;
    }
    // 2. Settings of each function.
    if (vc.runtime !== "executable") {
      fail(`${file}: runtime is ${JSON.stringify(vc.runtime)}, expected "executable" (the Rust builder's); remove any "runtime" set for it in vercel.json`);
    }
    if (vc.supportsResponseStreaming !== true) {
      fail(`${file}: supportsResponseStreaming is ${JSON.stringify(vc.supportsResponseStreaming)}, expected true, or replies will be buffered instead of streamed; check the @vercel/rust version and vercel.json`);
    }
    const { key, fn } = settingsFor(file);
    if (vc.maxDuration !== fn.maxDuration) {
      const source = key === null ? "no vercel.json functions key matches it, so none was expected" : `vercel.json functions[${JSON.stringify(key)}] gives ${fn.maxDuration}`;
      fail(`${file}: maxDuration is ${JSON.stringify(vc.maxDuration)} but ${source}; fix the glob order or values in vercel.json`);
    }
    // 3. The function runs its own binary (not the base-name fallback).
    const bin = found.bins.get(file);
    if (bin === undefined) continue; // already reported: no [[bin]] for it
    const want = path.join(targetRel, "release", bin);
    const mapped = vc.filePathMap?.[vc.handler];
    const exe = mapped ? path.join(root, mapped) : path.join(dir, vc.handler ?? "executable");
    if (mapped !== undefined ? path.normalize(mapped) !== want : !sameContents(exe, path.join(root, want))) {
      fail(`${file}: the function runs ${mapped ?? exe}, not ${want} (its [[bin]] "${bin}"); give every api/ file its own [[bin]] with that path`);
    } else if (!isExecutable(exe)) {
      fail(`${file}: its executable ${path.relative(root, exe)} is missing or not executable; the release build did not produce it`);
    }
  }

  // 4. Routes: each dynamic segment reaches its function with the segment as a query parameter,
  //    and each rewrite reaches its destination.
  const routes = config.routes ?? [];
  for (const file of files.filter((f) => /\[[^\]]+\]/.test(f))) {
    const values = [];
    const pathname = `/${file.replace(/\.rs$/, "")}`.replace(/\[(\.\.\.)?([^\]]+)\]/g, (_, rest, name) => {
      const value = rest ? `v${values.length}a/v${values.length}b` : `v${values.length}`;
      values.push([name, value]);
      return value;
    });
    const funcPath = `/${file.replace(/\.rs$/, "")}`;
    const hit = route(routes, pathname);
    const dest = hit?.dest !== undefined ? new URL(hit.dest, "http://x") : null;
    const ok =
      dest !== null &&
      decodeURIComponent(dest.pathname) === funcPath &&
      values.every(([name, value]) => dest.searchParams.get(name) === value);
    if (!ok) {
      const query = values.map(([n, v]) => `${n}=${v}`).join("&");
      fail(`${file}: a request for ${pathname} goes to ${describe(hit)} instead of "${funcPath}?${query}"; look for a rewrite or route in vercel.json that shadows it`);
    }
  }
  for (const rw of vercelJson.rewrites ?? []) {
    const sample = sampleRewrite(rw);
    if (sample === null) {
      console.log(`vercel-build-check: note: rewrite ${JSON.stringify(rw.source)} not checked (only literal paths and :params are)`);
      continue;
    }
    const hit = route(routes, sample.from);
    if (hit?.dest === undefined || hit.dest !== sample.to) {
      fail(`rewrite ${JSON.stringify(rw.source)} -> ${JSON.stringify(rw.destination)}: a request for ${sample.from} goes to ${describe(hit)} instead of "${sample.to}"; check the order of vercel.json's rewrites and the function paths`);
    }
  }

  // 4b. A path segment is one id however it is spelled: `/api/threads/bogus&id=t1` must not
  //     reach a function as `?id=t1`. The function sees the segment whole, or `id` twice,
  //     which it refuses (404; it takes `id` exactly once: tests/api/edges.rs).
  for (const sample of ["/api/threads/bogus&id=t1", "/api/threads/bogus&id=t1/title", "/api/chat/bogus&id=t1/stream", "/api/conversations/bogus&id=t1", "/api/threads/bogus%26id%3Dt1"]) {
    const hit = route(routes, sample);
    if (hit?.dest === undefined) continue; // answered by the platform itself: nothing reaches a function
    const ids = new URL(hit.dest, "http://x").searchParams.getAll("id");
    if (ids.length === 1 && ids[0] === "t1") {
      fail(`a request for ${sample} reaches ${describe(hit)}: the function would take the id "t1" from inside another segment; make the route pass the segment whole`);
    }
  }

  // 5. Static files: only what public/ holds, unchanged. Without public/, Vercel publishes the
  //    repository root (Cargo.toml, sources, .env files...).
  const staticDir = path.join(out, "static");
  const published = listFiles(staticDir);
  const stray = published.filter((rel) => !fs.existsSync(path.join(root, "public", rel)));
  if (stray.length > 0 && !fs.existsSync(path.join(root, "public"))) {
    fail(`public/ is missing, so Vercel publishes the repository itself as static files (${stray.length} of them, e.g. ${stray.slice(0, 3).join(", ")}); restore public/ with the site's files`);
  } else {
    const shown = 10;
    for (const rel of stray.slice(0, shown)) {
      fail(`.vercel/output/static/${rel} is published but is not in public/; only public/ may be served: remove whatever copies it there (an outputDirectory or build command in vercel.json)`);
    }
    if (stray.length > shown) fail(`... and ${stray.length - shown} more static files from outside public/`);
  }
  for (const rel of published.filter((r) => !stray.includes(r))) {
    if (!sameContents(path.join(root, "public", rel), path.join(staticDir, rel))) {
      fail(`.vercel/output/static/${rel} differs from public/${rel}; nothing should rewrite public/ during the build`);
    }
  }

  // 6. The web app: every file of public/ is published (the page at /), and the page gets the
  //    headers vercel.json gives it, its Content-Security-Policy first of all.
  for (const rel of listFiles(path.join(root, "public"))) {
    if (!published.includes(rel)) fail(`public/${rel} is not published in .vercel/output/static; check vercel.json's outputDirectory and .vercelignore`);
  }
  const wanted = (vercelJson.headers ?? []).flatMap((rule) => {
    const sample = sampleRewrite({ source: rule.source, destination: "/" });
    return rule.source === "/((?!api/).*)" || sample?.from === "/" ? rule.headers : [];
  });
  if (!wanted.some((h) => h.key.toLowerCase() === "content-security-policy")) {
    fail(`vercel.json gives the page at / no Content-Security-Policy header; add it under "headers"`);
  }
  const given = {};
  for (const r of routes.slice(0, Math.max(0, routes.findIndex((r) => r.handle === "filesystem")))) {
    if (r.headers && r.src && new RegExp(r.src).test("/")) {
      for (const [key, value] of Object.entries(r.headers)) given[key.toLowerCase()] = value;
    }
  }
  for (const { key, value } of wanted) {
    if (given[key.toLowerCase()] !== value) {
      fail(`a request for / gets ${key}: ${JSON.stringify(given[key.toLowerCase()] ?? null)}, not vercel.json's ${JSON.stringify(value)}; check the "headers" source pattern`);
    }
  }
  finish();
}

// A request path that the rewrite's source matches and where it should land, for sources made
// of literal segments and `:name` parameters; null for anything fancier.
function sampleRewrite({ source, destination, has, missing }) {
  if (typeof source !== "string" || typeof destination !== "string" || has || missing) return null;
  if (/[()*+?{}\\]/.test(source)) return null;
  const values = {};
  let n = 0;
  const from = source.replace(/:([A-Za-z_]\w*)/g, (_, name) => (values[name] = `p${n++}`));
  const to = destination.replace(/:([A-Za-z_]\w*)/g, (m, name) => values[name] ?? m);
  return { from, to };
}

function sameContents(a, b) {
  try {
    return fs.readFileSync(a).equals(fs.readFileSync(b));
  } catch {
    return false;
  }
}

function isExecutable(p) {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

const [command, arg] = process.argv.slice(2);
if (command === "preflight") preflight();
else if (command === "output" && arg) output(arg);
else {
  console.error("usage: node scripts/vercel-build-check.mjs preflight | output <cli dir>");
  process.exit(2);
}
