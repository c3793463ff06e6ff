// check-gen.mjs - fails when src/schema.ts is not what docs/openapi.yaml
// generates now, so a change to the document cannot leave the client's types
// behind. Fix: `npm run gen` and commit src/schema.ts.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = mkdtempSync(join(tmpdir(), "racefree-gen-"));
try {
  const out = join(dir, "schema.ts");
  execFileSync(process.execPath, [join(pkg, "node_modules/openapi-typescript/bin/cli.js"),
    join(pkg, "../../docs/openapi.yaml"), "-o", out], { stdio: ["ignore", "ignore", "inherit"] });
  const want = readFileSync(out, "utf8");
  const have = readFileSync(join(pkg, "src/schema.ts"), "utf8");
  if (want !== have) {
    const a = want.split("\n"), b = have.split("\n");
    let i = 0;
    while (i < a.length && a[i] === b[i]) i++;
    console.error(`check-gen: src/schema.ts differs from what docs/openapi.yaml generates (first at line ${i + 1}:`);
    console.error(`  generated: ${a[i] ?? "(end)"}\n  checked in: ${b[i] ?? "(end)"})`);
    console.error("check-gen: run `npm run gen` in clients/typescript and commit src/schema.ts");
    process.exit(1);
  }
  console.log("check-gen: src/schema.ts matches docs/openapi.yaml");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
