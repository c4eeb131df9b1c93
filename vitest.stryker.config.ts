// The unit suite as `npm run mutation` (Stryker) runs it: one project, without the header fuzzer, whose
// 25 s loop would run again for every mutant of the header code it covers (the structured tests in
// header-faults, vectors-v1 and power-cut cover the same lines and are what should kill those mutants).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    exclude: ['test/unit/header-fuzz.test.ts', 'node_modules/**'],
    testTimeout: 60_000,
  },
});
