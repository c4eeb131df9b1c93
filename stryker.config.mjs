// Mutation testing (`npm run mutation`; not in CI, a full run takes hours on two cores): every mutant of
// the crypto, container and the pure fuse code must make a unit test fail. The report is
// reports/mutation/mutation.json (and .html beside it). Keep concurrency low on shared machines.
// By area instead (each with the unit tests that exercise it, its own report and an incremental file):
// `node scripts/mutation-area.mjs <area>`, then `node scripts/mutation-score.mjs reports/mutation/<area>.json ...`
// for the merged score; the areas together mutate exactly the files below.
const report = (process.env.STRYKER_REPORT ?? 'reports/mutation/mutation').replace(/\.json$/, '');

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.stryker.config.ts', related: false },
  mutate: [
    'src/crypto/**/*.ts',
    'src/container/**/*.ts',
    // The parts of src/fuse that run without a FUSE mount (the rest is covered by the e2e suite).
    'src/fuse/host-file.ts',
    'src/fuse/passthrough-device.ts',
  ],
  coverageAnalysis: 'perTest',
  ignoreStatic: true,
  concurrency: Number(process.env.STRYKER_CONCURRENCY ?? 2),
  timeoutMS: 20_000,
  reporters: ['json', 'html', 'clear-text', 'progress-append-only'],
  // STRYKER_REPORT=reports/mutation/crypto names one area's report (and its .html), so that runs over
  // parts (`--mutate`, with STRYKER_TESTS) add up: scripts/mutation-score.mjs merges them into one score.
  jsonReporter: { fileName: `${report}.json` },
  htmlReporter: { fileName: `${report}.html` },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
