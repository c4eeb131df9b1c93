// Mutation testing (`npm run mutation`; not in CI, a full run takes hours on two cores): every mutant of
// the crypto, container and the pure fuse code must make a unit test fail. The report is
// reports/mutation/mutation.json (and .html beside it). Keep concurrency low on shared machines.
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
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
