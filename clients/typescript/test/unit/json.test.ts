// The lossless JSON reader and writer (src/json.ts): int64 extremes, amounts
// always bigint, nested values, escapes, floats, and what is refused.
import assert from "node:assert/strict";
import { test } from "node:test";

import { JsonSyntaxError, parseJson, stringifyJson } from "../../src/json.js";

const I64_MAX = 9223372036854775807n;
const I64_MIN = -9223372036854775808n;

test("int64 extremes are read exactly, as bigint", () => {
  assert.deepEqual(parseJson(`[9223372036854775807, -9223372036854775808, 9007199254740993]`),
    [I64_MAX, I64_MIN, 9007199254740993n]);
});

test("safe integers stay numbers, except amount members, which are always bigint", () => {
  const v = parseJson(`{"version": 3, "amount_minor": 5, "posted": -2, "n": 9007199254740991, "m": -9007199254740991}`);
  assert.deepEqual(v, { version: 3, amount_minor: 5n, posted: -2n, n: 9007199254740991, m: -9007199254740991 });
});

test("the first unsafe integers become bigint", () => {
  assert.deepEqual(parseJson(`[9007199254740992, -9007199254740992]`), [9007199254740992n, -9007199254740992n]);
});

test("nested objects and arrays", () => {
  const text = `{"data":[{"amount_minor":9223372036854775807,"metadata":{"a":[1,{"b":null}],"t":true}}],"next":null}`;
  assert.deepEqual(parseJson(text), {
    data: [{ amount_minor: I64_MAX, metadata: { a: [1, { b: null }], t: true } }],
    next: null,
  });
});

test("floats stay numbers, amount members included", () => {
  assert.deepEqual(parseJson(`{"x": 1.5, "y": -0.25e2, "z": 1E3, "amount_minor": 2.5}`),
    { x: 1.5, y: -25, z: 1000, amount_minor: 2.5 });
});

test("strings with escapes, unicode and surrogate pairs", () => {
  const s = `"q\\"b\\\\s\\/n\\nr\\rt\\tb\\bf\\f\\u00e9\\ud83d\\ude00 é 😀"`;
  assert.equal(parseJson(s), JSON.parse(s));
  assert.equal(parseJson(s), `q"b\\s/n\nr\rt\tb\bf\fé😀 é 😀`);
});

test("__proto__ is an own member, not the prototype", () => {
  const v = parseJson(`{"__proto__": {"polluted": 1}}`) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(v), Object.prototype);
  assert.deepEqual(Object.keys(v), ["__proto__"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test("malformed JSON is refused", () => {
  for (const bad of [``, `{`, `[1,]`, `{"a":1,}`, `01`, `1.`, `-`, `"a`, `"\u0001"`, `"\\x"`, `"\\u12"`,
    `tru`, `{a:1}`, `[1] 2`, `NaN`, `+1`, `'a'`]) {
    assert.throws(() => parseJson(bad), JsonSyntaxError, `accepted ${JSON.stringify(bad)}`);
  }
});

test("deep nesting is refused, not a stack overflow", () => {
  assert.throws(() => parseJson("[".repeat(100000)), JsonSyntaxError);
});

test("bigint is written as a bare integer; the round trip is exact", () => {
  const v = { amount_minor: I64_MAX, low: I64_MIN, n: 7, f: 1.5, s: "é\"\n", a: [true, null], o: {} };
  const text = stringifyJson(v);
  assert.equal(text, `{"amount_minor":9223372036854775807,"low":-9223372036854775808,"n":7,"f":1.5,` +
    `"s":"é\\"\\n","a":[true,null],"o":{}}`);
  assert.deepEqual(parseJson(text), { ...v, n: 7 });
});

test("the writer leaves out undefined, honours toJSON and refuses what would lose data", () => {
  assert.equal(stringifyJson({ a: undefined, d: new Date(0), l: [undefined] }),
    `{"d":"1970-01-01T00:00:00.000Z","l":[null]}`);
  assert.throws(() => stringifyJson({ amount_minor: 2 ** 53 + 2 }), RangeError);
  assert.throws(() => stringifyJson(NaN), RangeError);
  assert.throws(() => stringifyJson(Infinity), RangeError);
});

test("agrees with JSON.parse and JSON.stringify on random values without amounts or unsafe integers", () => {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return Math.floor(seed / 65536) % n; // the high bits: an LCG's low bits repeat with a short period
  };
  const chars = ["a", "é", "😀", "\"", "\\", "\n", "\u0001", "\u2028", "/", " "];
  const str = (): string => Array.from({ length: rnd(6) }, () => chars[rnd(chars.length)]).join("");
  const gen = (depth: number): unknown => {
    switch (depth > 3 ? rnd(4) : rnd(6)) {
      case 0: return rnd(2) === 0 ? null : rnd(2) === 0;
      case 1: return rnd(2) === 0 ? rnd(1_000_000) - 500_000 : (rnd(2_000_000) - 1_000_000) / 1024;
      case 2: return str();
      case 3: return rnd(2) === 0 ? -Number.MAX_SAFE_INTEGER : 2.5e-300;
      case 4: return Array.from({ length: rnd(4) }, () => gen(depth + 1));
      default: return Object.fromEntries(Array.from({ length: rnd(4) }, () => [`k${str()}`, gen(depth + 1)]));
    }
  };
  for (let i = 0; i < 500; i++) {
    const v = gen(0);
    const text = JSON.stringify(v, null, rnd(2) === 0 ? 2 : undefined);
    assert.deepEqual(parseJson(text), JSON.parse(text));
    assert.equal(stringifyJson(v), JSON.stringify(v));
  }
  // Past 2^53 every number is integer-valued and may be rounded: read as JSON.parse would for
  // a float literal, refused when written (pass a bigint).
  assert.equal(parseJson("-1e300"), -1e300);
  assert.throws(() => stringifyJson(-1e300), RangeError);
});
