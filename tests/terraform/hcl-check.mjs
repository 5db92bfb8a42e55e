// Syntax and format check for every Terraform file under infra/, modules/ and examples/.
//
// Syntax: @cdktf/hcl2json wraps HashiCorp's own HCL parser (Go, compiled to wasm),
// so a file it rejects is a file `terraform` would reject.
// Format: @cdktf/hcl-tools wraps hclwrite.Format, the formatter behind `terraform fmt`.
// A file whose formatted text differs from what is on disk is reported with the
// first differing line. Exit code 0 = all clean, 1 = findings, 2 = internal error.
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "@cdktf/hcl2json";
import { format } from "@cdktf/hcl-tools";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = process.argv[2] ? path.resolve(process.argv[2]) : path.resolve(here, "..", "..");
const scanDirs = ["infra", "modules", "examples"];

async function collect(dir) {
  const out = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name === ".terraform" || e.name === "node_modules") continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await collect(p)));
    else if (e.name.endsWith(".tf") || e.name.endsWith(".tfvars") || e.name.endsWith(".tfvars.example")) out.push(p);
  }
  return out;
}

function firstDiff(a, b) {
  const la = a.split("\n");
  const lb = b.split("\n");
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) {
      return { line: i + 1, have: la[i] ?? "<eof>", want: lb[i] ?? "<eof>" };
    }
  }
  return null;
}

const files = [];
for (const d of scanDirs) files.push(...(await collect(path.join(root, d))));
files.sort();

let syntaxErrors = 0;
let formatErrors = 0;
for (const file of files) {
  const rel = path.relative(root, file);
  const text = await readFile(file, "utf8");
  try {
    await parse(rel, text);
  } catch (err) {
    syntaxErrors++;
    console.log(`SYNTAX  ${rel}: ${String(err && err.message ? err.message : err).trim()}`);
    continue;
  }
  const formatted = await format(text);
  if (formatted !== text) {
    formatErrors++;
    const d = firstDiff(text, formatted);
    console.log(`FORMAT  ${rel}:${d.line}: have ${JSON.stringify(d.have)}, formatter wants ${JSON.stringify(d.want)}`);
  }
}

console.log(
  `hcl: ${files.length} files parsed, ${syntaxErrors} syntax error(s), ${formatErrors} formatting difference(s)`,
);
if (files.length === 0) {
  console.log("hcl: no Terraform files found: is the repository root right?");
  process.exit(1);
}
process.exit(syntaxErrors + formatErrors === 0 ? 0 : 1);
