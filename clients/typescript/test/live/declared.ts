// declared.ts - records the responses the live tests get and checks that
// every racefree header in them (ETag, Location, Idempotent-Replayed,
// Retry-After, X-Request-Id, WWW-Authenticate, Allow) is declared in
// docs/openapi.yaml for that operation and status, so a header the server
// sends can never be missing from the document (and from the generated types).
import { readFileSync } from "node:fs";
import { join } from "node:path";

import yaml from "js-yaml";

const CHECKED = ["etag", "location", "idempotent-replayed", "retry-after", "x-request-id", "www-authenticate", "allow"];

interface Seen {
  method: string;
  path: string;
  status: number;
  headers: string[];
}

export const seen: Seen[] = [];

/** A fetch that records what it got. */
export const recordingFetch: typeof fetch = async (input, init) => {
  const res = await fetch(input, init);
  const url = new URL(input instanceof Request ? input.url : String(input));
  seen.push({ method: String(init?.method ?? "GET").toLowerCase(), path: url.pathname, status: res.status,
    headers: [...res.headers.keys()].filter((h) => CHECKED.includes(h)) });
  return res;
};

type Obj = { [k: string]: unknown };
const obj = (v: unknown): Obj => (v !== null && typeof v === "object" ? (v as Obj) : {});

/** "<method> <path> <status>: <header>" for every recorded header the document does not declare. */
export function undeclared(docPath = join(process.cwd(), "../../docs/openapi.yaml")): string[] {
  const doc = obj(yaml.load(readFileSync(docPath, "utf8")));
  const paths = obj(doc.paths);
  const responses = obj(obj(doc.components).responses);
  const templates = Object.keys(paths).map((t) => ({
    t, re: new RegExp("^" + t.replace(/\{[^}]+\}/g, "[^/]+") + "$"),
  }));
  const out: string[] = [];
  for (const s of seen) {
    const tpl = templates.find((x) => x.re.test(s.path));
    const where = `${s.method.toUpperCase()} ${s.path} ${s.status}`;
    if (!tpl) {
      out.push(`${where}: path not in the document`);
      continue;
    }
    let resp = obj(obj(obj(obj(paths[tpl.t])[s.method]).responses)[String(s.status)]);
    const ref = resp.$ref;
    if (typeof ref === "string") resp = obj(responses[ref.replace("#/components/responses/", "")]);
    if (Object.keys(resp).length === 0) {
      out.push(`${where}: status not in the document`);
      continue;
    }
    const declared = Object.keys(obj(resp.headers)).map((h) => h.toLowerCase());
    for (const h of s.headers) if (!declared.includes(h)) out.push(`${where}: ${h}`);
  }
  return [...new Set(out)];
}
