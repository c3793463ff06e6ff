'use strict';
// report.js - turns bench/run.sh's TSV rows into the generated top section of
// docs/PERFORMANCE.md (between the bench:begin and bench:end markers; the
// history below is kept) and the chart OUT_DIR/throughput.svg: requests per
// second against connections, one panel per suite, one line per system
// (drawn by gnuplot when it is installed, else by drawSvg below).
//   node bench/report.js RESULTS.tsv docs/PERFORMANCE.md OUT_DIR [SECONDS_TAKEN]
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const [resultsPath, mdPath, outDir, taken] = process.argv.slice(2);
const BEGIN = '<!-- bench:begin: bench/report.js rewrites this section; edit below bench:end -->';
const END = '<!-- bench:end -->';
const SUITES = { grants: 'entitlement grants', credits: 'durable credits (Idempotency-Key)',
  transfers: 'transfers, spread over 256 account pairs', hot: 'transfers out of one hot account',
  jobs: 'job queue: jobs enqueued, claimed and completed per second' };
const SYSTEMS = { racefree: 'racefree, SQLite --sync full', 'node-sqlite': 'Node + better-sqlite3',
  'racefree-1': 'racefree, PostgreSQL, 1 process', 'racefree-3': 'racefree, PostgreSQL, 3 processes',
  'node-pg': 'Node + pg, 3 workers' };
// Each racefree system and the baseline it is compared with.
const PAIRS = [['sqlite', 'racefree', 'node-sqlite'], ['postgres', 'racefree-1', 'node-pg'],
  ['postgres', 'racefree-3', 'node-pg']];

function load() {
  const [head, ...lines] = fs.readFileSync(resultsPath, 'utf8').trim().split('\n');
  const cols = head.split('\t');
  return lines.filter(Boolean).map((l) => {
    const v = l.split('\t');
    const r = Object.fromEntries(cols.map((c, i) => [c, v[i]]));
    for (const k of ['conns', 'round', 'rps', 'p50_ms', 'p99_ms', 'non2xx', 'socket_errors', 'requests', 'seconds']) r[k] = Number(r[k]);
    return r;
  });
}

// The mean of a system's rounds (rps, p50, p99) and its summed failures:
// non-2xx answers, and socket errors (wrk's timeouts: no answer in 10 s).
function summary(rows, suite, backend, system, conns) {
  const rs = rows.filter((r) => r.suite === suite && r.backend === backend && r.system === system && r.conns === conns);
  if (!rs.length) return null;
  const mean = (k) => rs.reduce((s, r) => s + r[k], 0) / rs.length;
  return { rps: mean('rps'), p50: mean('p50_ms'), p99: mean('p99_ms'), rounds: rs.length,
    non2xx: rs.reduce((s, r) => s + r.non2xx, 0), socket: rs.reduce((s, r) => s + r.socket_errors, 0) };
}

const num = (x) => Math.round(x).toLocaleString('en-US');
const ms = (x) => (x < 10 ? x.toFixed(2) : x.toFixed(1));

function comparisonTable(rows) {
  const out = ['| suite | racefree vs baseline | conns | racefree req/s | baseline req/s | ratio | racefree p50 / p99 ms | baseline p50 / p99 ms | non-2xx (racefree / baseline) | socket errors, timeouts (racefree / baseline) |',
    '|---|---|---|---|---|---|---|---|---|---|'];
  const conns = [...new Set(rows.map((r) => r.conns))].sort((a, b) => a - b);
  for (const suite of Object.keys(SUITES)) {
    for (const [backend, rf, base] of PAIRS) {
      for (const c of conns) {
        const a = summary(rows, suite, backend, rf, c), b = summary(rows, suite, backend, base, c);
        if (!a || !b) continue;
        out.push(`| ${suite} | ${SYSTEMS[rf]} vs ${SYSTEMS[base]} | ${c} | ${num(a.rps)} | ${num(b.rps)} | **${(a.rps / b.rps).toFixed(2)}x** | ${ms(a.p50)} / ${ms(a.p99)} | ${ms(b.p50)} / ${ms(b.p99)} | ${a.non2xx} / ${b.non2xx} | ${a.socket} / ${b.socket} |`);
      }
    }
  }
  return out.length > 2 ? out.join('\n') : '(no side-by-side rows in this run)';
}

function embeddedTable(rows) {
  const out = ['| mode | calls in flight | calls/s | p50 ms | p99 ms | failed calls |', '|---|---|---|---|---|---|'];
  const modes = [
    ['key', 64, '64 threads, blocking calls, with an Idempotency-Key'],
    ['nokey', 64, '64 threads, blocking calls, without a key'],
    ['submit', 1024, '4 threads submitting (`rf_op_submit`), 256 each in flight, with a key'],
  ];
  for (const [mode, inflight, label] of modes) {
    const s = summary(rows, `embedded-${mode}`, 'sqlite', 'library', inflight);
    if (s) out.push(`| ${label} | ${inflight} | ${num(s.rps)} | ${ms(s.p50)} | ${ms(s.p99)} | ${s.non2xx} |`);
  }
  return out.length > 2 ? out.join('\n') : '(the embedded benchmark did not run)';
}

// The chart's series: per suite, per system, [conns, mean rps] points.
function series(rows) {
  const out = {};
  for (const suite of Object.keys(SUITES)) {
    for (const system of Object.keys(SYSTEMS)) {
      const pts = [...new Set(rows.filter((r) => r.suite === suite && r.system === system).map((r) => r.conns))]
        .sort((a, b) => a - b)
        .map((c) => [c, summary(rows, suite, rows.find((r) => r.system === system).backend, system, c).rps]);
      if (pts.length) (out[suite] = out[suite] || {})[system] = pts;
    }
  }
  return out;
}

// Baselines are drawn dashed, racefree solid.
const dashed = (system) => system.startsWith('node');

function gnuplot(data, svgPath) {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'rf-report-'));
  const suites = Object.keys(data);
  const plots = suites.map((suite) => {
    const lines = Object.entries(data[suite]).map(([system, pts]) => {
      const f = path.join(dir, `${suite}-${system}.dat`);
      fs.writeFileSync(f, pts.map((p) => p.join(' ')).join('\n') + '\n');
      return `'${f}' using 1:2 with linespoints lw 2 dt ${dashed(system) ? 2 : 1} title '${SYSTEMS[system]}'`;
    });
    return `set title '${SUITES[suite]}'\nplot ${lines.join(', \\\n  ')}`;
  });
  const rowsN = Math.ceil(suites.length / 2);
  const script = `set terminal svg size 1100,${430 * rowsN} font 'sans,11' background rgb 'white'
set output '${svgPath}'
set multiplot layout ${rowsN},2
set logscale x 2
set xrange [0.8:80]
set xtics (1, 4, 16, 64)
set xlabel 'connections'
set ylabel 'requests per second'
set yrange [0:*]
set key top left Left reverse font ',9'
set grid
${plots.join('\n')}
unset multiplot
`;
  fs.writeFileSync(path.join(dir, 'chart.gp'), script);
  execFileSync('gnuplot', [path.join(dir, 'chart.gp')]);
  fs.rmSync(dir, { recursive: true });
}

// The same chart without gnuplot: a panel per suite, log2 x axis.
function drawSvg(data, svgPath) {
  const W = 540, H = 400, M = { l: 70, r: 20, t: 30, b: 45 }, colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd'];
  const suites = Object.keys(data), sys = Object.keys(SYSTEMS);
  const panels = suites.map((suite, i) => {
    const x0 = (i % 2) * (W + 10), y0 = Math.floor(i / 2) * (H + 10);
    const ymax = Math.max(1, ...Object.values(data[suite]).flat().map((p) => p[1])) * 1.1;
    const px = (c) => x0 + M.l + (Math.log2(c) / 6) * (W - M.l - M.r);
    const py = (v) => y0 + H - M.b - (v / ymax) * (H - M.t - M.b);
    const parts = [`<text x="${x0 + W / 2}" y="${y0 + 18}" text-anchor="middle" font-weight="bold">${SUITES[suite]}</text>`,
      `<rect x="${x0 + M.l}" y="${y0 + M.t}" width="${W - M.l - M.r}" height="${H - M.t - M.b}" fill="none" stroke="#888"/>`];
    for (const c of [1, 4, 16, 64]) parts.push(`<text x="${px(c)}" y="${y0 + H - M.b + 16}" text-anchor="middle">${c}</text>`);
    for (let k = 0; k <= 4; k++) parts.push(`<text x="${x0 + M.l - 6}" y="${py((ymax * k) / 4) + 4}" text-anchor="end">${num((ymax * k) / 4)}</text>`);
    parts.push(`<text x="${x0 + W / 2}" y="${y0 + H - 8}" text-anchor="middle">connections</text>`);
    Object.entries(data[suite]).forEach(([system, pts], j) => {
      const color = colors[sys.indexOf(system) % colors.length];
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dashed(system) ? ' stroke-dasharray="6,4"' : ''} points="${pts.map(([c, v]) => `${px(c)},${py(v)}`).join(' ')}"/>`);
      for (const [c, v] of pts) parts.push(`<circle cx="${px(c)}" cy="${py(v)}" r="3" fill="${color}"/>`);
      parts.push(`<text x="${x0 + M.l + 8}" y="${y0 + M.t + 16 + 14 * j}" fill="${color}">${SYSTEMS[system]}</text>`);
    });
    return parts.join('\n');
  });
  const rowsN = Math.ceil(suites.length / 2);
  fs.writeFileSync(svgPath, `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W + 10}" height="${rowsN * (H + 10)}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
${panels.join('\n')}
</svg>
`);
}

function chart(rows) {
  const svgPath = path.join(outDir, 'throughput.svg');
  const data = series(rows);
  if (!Object.keys(data).length) return null;
  try {
    gnuplot(data, svgPath);
  } catch (e) {
    console.error(`report.js: gnuplot failed (${e.message.split('\n')[0]}); drawing the SVG itself`);
    drawSvg(data, svgPath);
  }
  return path.relative(path.dirname(mdPath), svgPath);
}

function section(rows, chartRel) {
  const head = (cmd) => { try { return execFileSync('sh', ['-c', cmd]).toString().trim(); } catch (e) { return '?'; } };
  const secs = rows.length ? rows[0].seconds : 0, rounds = Math.max(0, ...rows.map((r) => r.round));
  return `${BEGIN}
## Side by side with the hand-written fixes

Generated by \`make bench\` (\`bench/run.sh\`, then \`bench/report.js\`) at
commit ${process.env.BENCH_COMMIT || head('git rev-parse --short HEAD')} on ${head('date -u +%Y-%m-%d')}, ${head('nproc')} cores:
${secs} s per wrk run, ${rounds} round(s) per system, the systems alternating
(A B A B) in one run${taken ? `, ${Math.round(taken / 60)} min in all` : ''}. Raw rows:
\`${path.relative(path.dirname(mdPath), resultsPath)}\`. wrk, the servers and PostgreSQL share the
machine over loopback. Each run starts on a fresh store (a new SQLite file,
a new PostgreSQL database in a cluster with fsync and synchronous_commit on).

The baselines (\`bench/baselines/\`) are the seeds' own fixes done right, on
racefree's routes, headers and bodies (one wrk script drives both) with a
Bearer token checked: Node \`http\` + better-sqlite3 (WAL, synchronous=FULL,
one transaction per request: Idempotency-Key check, balance update with an
overdraft guard for transfers, history insert; grants INSERT OR IGNORE and
re-read), and Node + pg (3 \`cluster\` workers, a Pool each: BEGIN /
Idempotency-Key check / SELECT ... FOR UPDATE / UPDATE / INSERT history /
COMMIT). racefree does more per credit and transfer than they do (two
guarded balance updates, two entries, the Idempotency-Key's stored answer).
A ratio above 1 means racefree served more requests per second. In the
jobs rows the req/s columns are jobs per second instead: each job is
enqueued, claimed (16 per claim, each with a fencing token) and completed
with its token, by every wrk thread on one shared queue (\`bench/jobs.lua\`);
the baselines run the same three statements by hand (INSERT ... ON CONFLICT
on a partial UNIQUE, UPDATE ... FOR UPDATE SKIP LOCKED, a token-guarded
UPDATE). River reports about 46k jobs/s on an 8-core laptop. On a
2-core machine the runs of one command vary by 20-30%, and much more when
other work shares the CPUs or the disk (a baseline that syncs every request
feels every slow fsync): compare rows of one run, not numbers across runs.

${comparisonTable(rows)}

The library (\`rf-bench-embedded\`: credits from \`rf_credit_apply\` or
\`rf_op_submit\` on one SQLite store at sync full):

${embeddedTable(rows)}
${chartRel ? `\n![requests per second against connections](${chartRel})\n` : ''}
${END}`;
}

function main() {
  const rows = load();
  fs.mkdirSync(outDir, { recursive: true });
  const chartRel = chart(rows);
  const md = fs.readFileSync(mdPath, 'utf8');
  const text = section(rows, chartRel);
  let next;
  if (md.includes(BEGIN) && md.includes(END)) {
    next = md.slice(0, md.indexOf(BEGIN)) + text + md.slice(md.indexOf(END) + END.length);
  } else { // first run: after the title, above everything that was there
    const nl = md.indexOf('\n');
    next = `${md.slice(0, nl + 1)}\n${text}\n${md.slice(nl + 1)}`;
  }
  fs.writeFileSync(mdPath, next);
  console.error(`report.js: wrote ${mdPath}${chartRel ? ` and ${chartRel}` : ''}`);
}

main();
