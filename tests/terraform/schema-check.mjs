// Checks every aws_* resource and data source in infra/, modules/ and examples/ against
// the AWS provider's schema, as generated into the npm package @cdktf/provider-aws (pinned
// in package.json; 19.65.1 is generated from hashicorp/aws 5.99.1, inside infra's
// "~> 5.80"). Findings: an unknown argument or nested block, a missing required argument
// or block, and a block written as an attribute (or the reverse).
//
// The schema comes from the package's TypeScript declarations: each lib/<name>/index.d.ts
// declares `<Class>Config` (the resource's arguments: a `?` marks an optional one; the
// JSDoc names the Terraform argument and says "<name> block" for nested blocks) and one
// interface per nested block. The HCL is read with HashiCorp's parser (@cdktf/hcl2json),
// which keeps blocks as arrays of objects and object-valued attributes as objects.
//
// Usage: node tests/terraform/schema-check.mjs [REPO]      exit 0 clean, 1 findings
//        node tests/terraform/schema-check.mjs --self-test  mutation tests of the checker
import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "@cdktf/hcl2json";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const pkgDir = path.dirname(require.resolve("@cdktf/provider-aws/package.json"));
const pkg = JSON.parse(await readFile(path.join(pkgDir, "package.json"), "utf8"));

// ---------------------------------------------------------------------------------------
// Schema from the declarations
// ---------------------------------------------------------------------------------------

/** Interfaces of one .d.ts: name -> [{tf, required, block, type}] */
function interfaces(dts) {
  const out = new Map();
  const re = /export interface (\w+)(?: extends [^{]+)? \{\n([\s\S]*?)\n\}/g;
  for (const m of dts.matchAll(re)) {
    const props = [];
    const propRe = /\/\*\*([\s\S]*?)\*\/\s*readonly (\w+)(\?)?: ([^;]+);/g;
    for (const p of m[2].matchAll(propRe)) {
      const doc = p[1];
      const tf = doc.match(/#(\w+) \w+#\w+\}/)?.[1];
      if (!tf) continue;
      const block = /\n\s*\*\s*\w+ block\s*\n/.test(doc) || /^\s*\*\s*\w+ block/m.test(doc);
      const typeName = p[4].replace(/\[\]/g, "").split("|")[0].trim();
      props.push({ tf, required: !p[3], block, type: typeName });
    }
    out.set(m[1], props);
  }
  return out;
}

function schemaOf(ifaces, name, depth = 0) {
  const props = ifaces.get(name) ?? [];
  const s = { attrs: new Map(), blocks: new Map() };
  for (const p of props) {
    if (p.block && depth < 12) {
      s.blocks.set(p.tf, { required: p.required, schema: schemaOf(ifaces, p.type, depth + 1) });
    } else {
      s.attrs.set(p.tf, { required: p.required });
    }
  }
  return s;
}

async function loadSchema(types) {
  const lib = path.join(pkgDir, "lib");
  const dirs = await readdir(lib);
  const byType = new Map();
  for (const dir of dirs) {
    let js;
    try {
      js = await readFile(path.join(lib, dir, "index.js"), "utf8");
    } catch {
      continue;
    }
    const t = js.match(/\.tfResourceType = "([\w-]+)";/)?.[1];
    if (!t) continue;
    const kind = dir.startsWith("data-aws-") ? "data" : "resource";
    const key = `${kind}.${t}`;
    if (types && !types.has(key)) continue;
    const dts = await readFile(path.join(lib, dir, "index.d.ts"), "utf8");
    const ifaces = interfaces(dts);
    const config = [...ifaces.keys()].find((n) => n.endsWith("Config") && dts.includes(`export interface ${n} extends cdktf.TerraformMetaArguments`));
    if (!config) continue;
    byType.set(key, schemaOf(ifaces, config));
  }
  return byType;
}

// ---------------------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------------------

const META_ATTRS = new Set(["count", "for_each", "depends_on", "provider"]);
const META_BLOCKS = new Set(["lifecycle", "connection", "provisioner", "timeouts"]);

const isBlockValue = (v) => Array.isArray(v) && v.every((x) => x && typeof x === "object" && !Array.isArray(x));

function checkBody(body, schema, where, findings) {
  const seen = new Set();
  for (const [key, value] of Object.entries(body)) {
    if (key === "dynamic") {
      for (const [name, list] of Object.entries(value)) {
        const b = schema.blocks.get(name);
        if (!b) {
          findings.push(`${where}: unknown block "${name}" (dynamic)`);
          continue;
        }
        seen.add(name);
        for (const d of list) for (const c of d.content ?? []) checkBody(c, b.schema, `${where}.${name}`, findings);
      }
      continue;
    }
    seen.add(key);
    if (META_ATTRS.has(key) || META_BLOCKS.has(key)) continue;
    const attr = schema.attrs.get(key);
    const block = schema.blocks.get(key);
    if (!attr && !block) {
      findings.push(`${where}: unknown argument "${key}"`);
    } else if (block) {
      if (!isBlockValue(value)) {
        findings.push(`${where}: "${key}" is a block; write ${key} { ... }, not ${key} = ...`);
      } else {
        for (const b of value) checkBody(b, block.schema, `${where}.${key}`, findings);
      }
    } else if (isBlockValue(value) && value.length > 0 && !Array.isArray(body[key]?.[0]) && typeof value[0] === "object" && isLikelyBlockSyntax(body, key)) {
      findings.push(`${where}: "${key}" is an argument; write ${key} = ..., not ${key} { ... }`);
    }
  }
  for (const [name, a] of schema.attrs) if (a.required && !seen.has(name)) findings.push(`${where}: missing required argument "${name}"`);
  for (const [name, b] of schema.blocks) if (b.required && !seen.has(name)) findings.push(`${where}: missing required block "${name}"`);
}

// hcl2json shows `x { }` and `x = [{ }]` alike; the raw text decides.
let currentText = "";
function isLikelyBlockSyntax(_body, key) {
  return new RegExp(`^\\s*${key}\\s*\\{`, "m").test(currentText);
}

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
    else if (e.name.endsWith(".tf")) out.push(p);
  }
  return out;
}

async function parsedFiles(root) {
  const files = [];
  for (const d of ["infra", "modules", "examples"]) files.push(...(await collect(path.join(root, d))));
  files.sort();
  const out = [];
  for (const f of files) {
    const text = await readFile(f, "utf8");
    out.push({ rel: path.relative(root, f), text, json: await parse(f, text) });
  }
  return out;
}

function usedTypes(files) {
  const types = new Set();
  for (const { json } of files) {
    for (const kind of ["resource", "data"]) for (const t of Object.keys(json[kind] ?? {})) if (t.startsWith("aws_")) types.add(`${kind}.${t}`);
  }
  return types;
}

export async function check(files, schema) {
  const findings = [];
  for (const { rel, text, json } of files) {
    currentText = text;
    for (const kind of ["resource", "data"]) {
      for (const [type, named] of Object.entries(json[kind] ?? {})) {
        if (!type.startsWith("aws_")) continue;
        const s = schema.get(`${kind}.${type}`);
        for (const [name, bodies] of Object.entries(named)) {
          const where = `${rel}: ${kind === "data" ? "data." : ""}${type}.${name}`;
          if (!s) {
            findings.push(`${where}: no ${kind} "${type}" in hashicorp/aws ${pkg.cdktf?.provider?.version}`);
            continue;
          }
          for (const body of bodies) checkBody(body, s, where, findings);
        }
      }
    }
  }
  return findings;
}

// ---------------------------------------------------------------------------------------
// Entry
// ---------------------------------------------------------------------------------------

const root = path.resolve(process.argv.slice(2).find((a) => !a.startsWith("--")) ?? path.join(here, "..", ".."));
const files = await parsedFiles(root);

if (process.argv.includes("--self-test")) {
  // Each mutation is a defect class; the clean tree must have no finding and each mutated
  // snippet exactly the one expected.
  const cases = [
    ["unknown argument", 'resource "aws_ecs_service" "x" {\n  name = "a"\n  desired_cuont = 1\n}\n', /unknown argument "desired_cuont"/],
    ["missing required argument", 'resource "aws_lb_target_group_attachment" "x" {\n  target_group_arn = "a"\n}\n', /missing required argument "target_id"/],
    ["missing required block", 'resource "aws_lb_listener" "x" {\n  load_balancer_arn = "a"\n}\n', /missing required block "default_action"/],
    ["block written as attribute", 'resource "aws_ecs_task_definition" "x" {\n  family = "a"\n  container_definitions = "[]"\n  runtime_platform = { cpu_architecture = "ARM64" }\n}\n', /"runtime_platform" is a block/],
    ["attribute written as block", 'resource "aws_ecs_service" "x" {\n  name = "a"\n  tags {\n    a = "b"\n  }\n}\n', /"tags" is an argument/],
    ["unknown nested argument", 'resource "aws_ecs_service" "x" {\n  name = "a"\n  deployment_circuit_breaker {\n    enable = true\n    rollback = true\n    rollbak = true\n  }\n}\n', /unknown argument "rollbak"/],
    ["unknown dynamic block", 'data "aws_iam_policy_document" "x" {\n  dynamic "statment" {\n    for_each = []\n    content {}\n  }\n}\n', /unknown block "statment"/],
    ["unknown resource type", 'resource "aws_ecs_servise" "x" {}\n', /no resource "aws_ecs_servise"/],
  ];
  const types = new Set([...usedTypes(files), "resource.aws_lb_target_group_attachment"]);
  const schema = await loadSchema(types);
  let failed = 0;
  const clean = await check(files, schema);
  if (clean.length) {
    failed++;
    console.log(`self-test: the real tree has findings:\n${clean.join("\n")}`);
  }
  for (const [name, hcl, want] of cases) {
    const f = await check([{ rel: "snippet.tf", text: hcl, json: await parse("snippet.tf", hcl) }], schema);
    if (f.length !== 1 || !want.test(f[0])) {
      failed++;
      console.log(`self-test: ${name}: expected one finding matching ${want}, got ${JSON.stringify(f)}`);
    } else {
      console.log(`self-test: ${name}: caught (${f[0]})`);
    }
  }
  console.log(`${cases.length + 1 - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

const schema = await loadSchema(usedTypes(files));
const findings = await check(files, schema);
for (const f of findings) console.log(f);
console.log(
  `schema: ${files.length} files, ${schema.size} aws resource/data types checked against hashicorp/aws ${pkg.cdktf?.provider?.version} (@cdktf/provider-aws ${pkg.version}), ${findings.length} finding(s)`,
);
process.exit(findings.length ? 1 : 0);
