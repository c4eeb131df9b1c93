#!/usr/bin/env node
// Merges Stryker JSON reports (mutation-testing-report-schema) of runs over parts of the code into one
// mutation score, by file and overall. Used by hand only (nothing in CI runs it):
//
//   node scripts/mutation-score.mjs reports/mutation/crypto.json reports/mutation/container.json
//   node scripts/mutation-score.mjs --survivors reports/mutation/*.json   # also list every live mutant
//   node scripts/mutation-score.mjs --min 80 reports/mutation/*.json      # exit 1 below 80 %
//
// Score as Stryker computes it: (killed + timeout) / (killed + timeout + survived + no coverage);
// compile and runtime errors and ignored mutants are not valid mutants. A file reported by several
// reports is taken whole from the report named last, so a later re-run of one area replaces the earlier.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
let survivors = false;
let min = null;
const reports = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--survivors') survivors = true;
  else if (args[i] === '--min') min = Number(args[++i]);
  else if (args[i] === '--help' || args[i] === '-h') {
    console.log('usage: node scripts/mutation-score.mjs [--survivors] [--min PERCENT] report.json...');
    process.exit(0);
  } else reports.push(args[i]);
}
if (reports.length === 0 || (min !== null && !Number.isFinite(min))) {
  console.error('usage: node scripts/mutation-score.mjs [--survivors] [--min PERCENT] report.json...');
  process.exit(2);
}

/** path -> { report, source, mutants } (the last report naming a file wins) */
const files = new Map();
for (const name of reports) {
  const report = JSON.parse(readFileSync(name, 'utf8'));
  for (const [path, file] of Object.entries(report.files ?? {})) {
    files.set(path, { report: name, source: file.source ?? '', mutants: file.mutants ?? [] });
  }
}

const UNDETECTED = new Set(['Survived', 'NoCoverage']);

function count(mutants) {
  const c = { killed: 0, timeout: 0, survived: 0, noCoverage: 0, invalid: 0 };
  for (const m of mutants) {
    if (m.status === 'Killed') c.killed++;
    else if (m.status === 'Timeout') c.timeout++;
    else if (m.status === 'Survived') c.survived++;
    else if (m.status === 'NoCoverage') c.noCoverage++;
    else c.invalid++;
  }
  const valid = c.killed + c.timeout + c.survived + c.noCoverage;
  const covered = valid - c.noCoverage;
  c.score = valid === 0 ? 100 : (100 * (c.killed + c.timeout)) / valid;
  c.coveredScore = covered === 0 ? 100 : (100 * (c.killed + c.timeout)) / covered;
  c.valid = valid;
  return c;
}

const pad = (s, n) => String(s).padStart(n);
const pct = (x) => `${x.toFixed(2)}%`;
const rows = [...files.keys()].sort();
const width = Math.max(20, ...rows.map((p) => p.length));
console.log(
  `${'file'.padEnd(width)} ${pad('score', 8)} ${pad('covered', 8)} ${pad('killed', 6)} ${pad('timeout', 7)} ${pad('survived', 8)} ${pad('no cov', 6)} ${pad('valid', 6)}`,
);
const all = [];
for (const path of rows) {
  const { mutants } = files.get(path);
  all.push(...mutants);
  const c = count(mutants);
  console.log(
    `${path.padEnd(width)} ${pad(pct(c.score), 8)} ${pad(pct(c.coveredScore), 8)} ${pad(c.killed, 6)} ${pad(c.timeout, 7)} ${pad(c.survived, 8)} ${pad(c.noCoverage, 6)} ${pad(c.valid, 6)}`,
  );
}
const total = count(all);
console.log(
  `${'all files'.padEnd(width)} ${pad(pct(total.score), 8)} ${pad(pct(total.coveredScore), 8)} ${pad(total.killed, 6)} ${pad(total.timeout, 7)} ${pad(total.survived, 8)} ${pad(total.noCoverage, 6)} ${pad(total.valid, 6)}`,
);

if (survivors) {
  console.log('\nmutants no test detected (file:line:column status mutator: replacement | source line):');
  for (const path of rows) {
    const { source, mutants } = files.get(path);
    const lines = source.split('\n');
    const live = mutants
      .filter((m) => UNDETECTED.has(m.status))
      .sort(
        (a, b) =>
          a.location.start.line - b.location.start.line || a.location.start.column - b.location.start.column,
      );
    for (const m of live) {
      const { line, column } = m.location.start;
      const replacement = (m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 60);
      const text = (lines[line - 1] ?? '').trim().slice(0, 100);
      console.log(`${path}:${line}:${column} ${m.status} ${m.mutatorName}: ${replacement} | ${text}`);
    }
  }
}

if (min !== null && total.score < min) {
  console.error(`mutation score ${pct(total.score)} is below ${min}%`);
  process.exit(1);
}
