/**
 * json.ts - a small lossless JSON reader and writer for racefree's wire format.
 *
 * Why: amounts are JSON integers up to 2^63-1 (int64 minor units). JSON.parse
 * turns 9007199254740993 into 9007199254740992 without a word, and Node 20 has
 * no JSON.parse source-text access to do better, so the client reads JSON here.
 *
 * Reading (parseJson):
 *  - a member whose name is in `bigintKeys` (the amount fields, see
 *    AMOUNT_KEYS) and whose value is an integer literal becomes a `bigint`,
 *    whatever its size, so an amount always has one type;
 *  - any other integer literal becomes a `number` when it is a safe integer
 *    (|n| <= 2^53-1) and a `bigint` otherwise (never a rounded number);
 *  - a literal with a fraction or an exponent stays a `number`;
 *  - strict RFC 8259 syntax (no trailing commas, no leading zeros, no control
 *    characters in strings); a member named "__proto__" is an own property,
 *    as with JSON.parse, never the object's prototype.
 * Writing (stringifyJson): a `bigint` is written as a bare JSON integer; a
 * `number` that is an integer outside the safe range is refused (RangeError:
 * it has already lost precision, pass a bigint); NaN and Infinity are refused;
 * `undefined` members are left out and toJSON() is honoured, as JSON.stringify
 * does.
 */

/** JSON values as this module reads and writes them. */
export type JsonValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** The response members that are int64 amounts (docs/openapi.yaml: format int64). */
export const AMOUNT_KEYS: ReadonlySet<string> = new Set([
  "amount_minor",
  "posted_amount_minor",
  "posted",
  "pending_debits",
  "pending_credits",
  "available",
  "balance_after",
  "refund_shortfall_minor",
]);

/** Nesting deeper than this is refused, so hostile input cannot overflow the stack. */
export const JSON_DEPTH_MAX = 256;

export class JsonSyntaxError extends SyntaxError {
  constructor(message: string, readonly position: number) {
    super(`${message} at position ${position}`);
    this.name = "JsonSyntaxError";
  }
}

export interface ParseOptions {
  /** Member names whose integer values are always bigint (default AMOUNT_KEYS). */
  bigintKeys?: ReadonlySet<string>;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

class Reader {
  pos = 0;
  constructor(readonly text: string, readonly bigintKeys: ReadonlySet<string>) {}

  fail(what: string): never {
    throw new JsonSyntaxError(what, this.pos);
  }

  skipSpace(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      this.pos++;
    }
  }

  value(key: string | null, depth: number): JsonValue {
    if (depth > JSON_DEPTH_MAX) this.fail("nesting too deep");
    this.skipSpace();
    const c = this.text[this.pos];
    switch (c) {
      case "{": return this.object(depth);
      case "[": return this.array(depth);
      case '"': return this.string();
      case "t": return this.literal("true", true);
      case "f": return this.literal("false", false);
      case "n": return this.literal("null", null);
      default:
        if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return this.number(key);
        return this.fail(c === undefined ? "unexpected end of input" : `unexpected character ${JSON.stringify(c)}`);
    }
  }

  literal<T extends JsonValue>(word: string, v: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail("invalid literal");
    this.pos += word.length;
    return v;
  }

  number(key: string | null): number | bigint {
    NUMBER_RE.lastIndex = this.pos;
    const m = NUMBER_RE.exec(this.text);
    if (!m) return this.fail("invalid number");
    this.pos += m[0].length;
    const lit = m[0];
    if (m[1] !== undefined || m[2] !== undefined) return Number(lit);
    const big = BigInt(lit);
    if (key !== null && this.bigintKeys.has(key)) return big;
    return big > MAX_SAFE || big < -MAX_SAFE ? big : Number(lit);
  }

  string(): string {
    const t = this.text;
    this.pos++; // opening quote
    let out = "";
    let run = this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail("unterminated string");
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) break;
      if (c < 0x20) this.fail("control character in string");
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += t.slice(run, this.pos);
      out += this.escape();
      run = this.pos;
    }
    out += t.slice(run, this.pos);
    this.pos++; // closing quote
    return out;
  }

  /** One escape after the backslash at pos; leaves pos after it. */
  escape(): string {
    const e = this.text[this.pos + 1];
    this.pos += 2;
    switch (e) {
      case '"': return '"';
      case "\\": return "\\";
      case "/": return "/";
      case "b": return "\b";
      case "f": return "\f";
      case "n": return "\n";
      case "r": return "\r";
      case "t": return "\t";
      case "u": {
        const hex = this.text.slice(this.pos, this.pos + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("invalid \\u escape");
        this.pos += 4;
        // Surrogate pairs arrive as two escapes; joining the UTF-16 code
        // units as they come rebuilds the character.
        return String.fromCharCode(parseInt(hex, 16));
      }
      default:
        this.pos -= 2;
        return this.fail("invalid escape");
    }
  }

  array(depth: number): JsonValue[] {
    this.pos++;
    const out: JsonValue[] = [];
    this.skipSpace();
    if (this.text[this.pos] === "]") {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(null, depth + 1));
      this.skipSpace();
      const c = this.text[this.pos++];
      if (c === "]") return out;
      if (c !== ",") this.fail("expected ',' or ']'");
    }
  }

  object(depth: number): { [key: string]: JsonValue } {
    this.pos++;
    const out: { [key: string]: JsonValue } = {};
    this.skipSpace();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] !== '"') this.fail("expected a member name");
      const key = this.string();
      this.skipSpace();
      if (this.text[this.pos++] !== ":") this.fail("expected ':'");
      const v = this.value(key, depth + 1);
      // defineProperty: a member named "__proto__" must stay data.
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      this.skipSpace();
      const c = this.text[this.pos++];
      if (c === "}") return out;
      if (c !== ",") this.fail("expected ',' or '}'");
    }
  }
}

/** Parses JSON text losslessly (see the top of this file). */
export function parseJson(text: string, options: ParseOptions = {}): JsonValue {
  const r = new Reader(text, options.bigintKeys ?? AMOUNT_KEYS);
  const v = r.value(null, 0);
  r.skipSpace();
  if (r.pos !== text.length) r.fail("unexpected text after the value");
  return v;
}

function writeNumber(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`cannot write ${n} as JSON`);
  if (Number.isInteger(n) && !Number.isSafeInteger(n)) {
    throw new RangeError(`${n} is outside the safe integer range and may have lost precision: pass it as a bigint`);
  }
  return JSON.stringify(n);
}

function write(v: unknown, depth: number): string | undefined {
  if (depth > JSON_DEPTH_MAX) throw new RangeError("nesting too deep");
  if (v !== null && typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON === "function") {
    v = (v as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof v) {
    case "bigint": return v.toString();
    case "number": return writeNumber(v);
    case "string": return JSON.stringify(v);
    case "boolean": return v ? "true" : "false";
    case "undefined":
    case "function":
    case "symbol": return undefined;
  }
  if (v === null) return "null";
  if (Array.isArray(v)) {
    return "[" + v.map((x) => write(x, depth + 1) ?? "null").join(",") + "]";
  }
  const parts: string[] = [];
  for (const [k, x] of Object.entries(v as object)) {
    const s = write(x, depth + 1);
    if (s !== undefined) parts.push(JSON.stringify(k) + ":" + s);
  }
  return "{" + parts.join(",") + "}";
}

/** Writes a value as compact JSON, bigints as bare integers (see the top of this file). */
export function stringifyJson(v: unknown): string {
  const s = write(v, 0);
  if (s === undefined) throw new TypeError("cannot write undefined as JSON");
  return s;
}
