// Regenerates the Inputs/Outputs tables of infra/README.md and modules/*/README.md
// from variables.tf and outputs.tf (between the <!-- BEGIN_TF_DOCS --> markers).
// Usage: node tests/terraform/docs.mjs            (rewrite)
//        node tests/terraform/docs.mjs --check    (exit 1 if a table is stale)
import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "@cdktf/hcl2json";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const check = process.argv.includes("--check");
const BEGIN = "<!-- BEGIN_TF_DOCS -->";
const END = "<!-- END_TF_DOCS -->";

const unwrap = (s) => (typeof s === "string" && s.startsWith("${") && s.endsWith("}") ? s.slice(2, -1) : s);
const cell = (s) => String(s).replace(/\|/g, "\\|").replace(/\n/g, " ");
const show = (v) => (v === undefined ? "n/a" : "`" + cell(typeof v === "string" ? JSON.stringify(unwrap(v)) : JSON.stringify(v)) + "`");

async function tables(dir) {
  const read = async (f) => {
    try {
      return await parse(f, await readFile(path.join(dir, f), "utf8"));
    } catch {
      return {};
    }
  };
  const vars = (await read("variables.tf")).variable ?? {};
  const outs = (await read("outputs.tf")).output ?? {};
  let md = "## Inputs\n\n| Name | Description | Type | Default | Required |\n|------|-------------|------|---------|:--------:|\n";
  for (const name of Object.keys(vars).sort()) {
    const v = vars[name][0];
    const required = !("default" in v);
    md += `| ${name} | ${cell(v.description ?? "")} | \`${cell(unwrap(v.type ?? "any"))}\` | ${required ? "n/a" : show(v.default === null ? null : v.default)} | ${required ? "yes" : "no"} |\n`;
  }
  md += "\n## Outputs\n\n| Name | Description |\n|------|-------------|\n";
  for (const name of Object.keys(outs).sort()) md += `| ${name} | ${cell(outs[name][0].description ?? "")} |\n`;
  return md;
}

const dirs = ["infra", ...(await readdir(path.join(root, "modules"))).sort().map((m) => path.join("modules", m))];
let stale = 0;
for (const rel of dirs) {
  const readme = path.join(root, rel, "README.md");
  let text;
  try {
    text = await readFile(readme, "utf8");
  } catch {
    console.log(`docs: ${rel}/README.md is missing`);
    stale++;
    continue;
  }
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a < 0 || b < a) {
    console.log(`docs: ${rel}/README.md has no ${BEGIN} ... ${END} section`);
    stale++;
    continue;
  }
  const next = text.slice(0, a + BEGIN.length) + "\n" + (await tables(path.join(root, rel))) + text.slice(b);
  if (next !== text) {
    if (check) {
      console.log(`docs: ${rel}/README.md inputs/outputs are out of date (run node tests/terraform/docs.mjs)`);
      stale++;
    } else {
      await writeFile(readme, next);
      console.log(`docs: updated ${rel}/README.md`);
    }
  }
}
console.log(`docs: ${dirs.length} README(s) checked, ${stale} stale`);
process.exit(stale ? 1 : 0);
