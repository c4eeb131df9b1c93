// The unit suite as `npm run mutation` (Stryker) runs it: one project, without the header fuzzer, whose
// 25 s loop would run again for every mutant of the header code it covers (the structured tests in
// header-faults, vectors-v1 and power-cut cover the same lines; the forged-header cases only the fuzzer
// has, e.g. bodyFits' checks of hidden areas, then show as survivors: check those against it by hand).
// STRYKER_TESTS=a.test.ts,b.test.ts (names in test/unit) narrows the run to those files, for a quick
// look at one area on a busy machine.
import { defineConfig } from 'vitest/config';

const only = process.env.STRYKER_TESTS?.split(',').filter(Boolean);

export default defineConfig({
  test: {
    include: only ? only.map((name) => `test/unit/${name}`) : ['test/unit/**/*.test.ts'],
    exclude: ['test/unit/header-fuzz.test.ts', 'node_modules/**'],
    testTimeout: 60_000,
  },
});
