#!/usr/bin/env node
// Mutation testing one area at a time (by hand; nothing in CI runs it). A full `npm run mutation` takes
// hours on two cores; an area mutates a few files with only the unit tests that exercise them, writes
// its own report (reports/mutation/<area>.json) and keeps an incremental file, so a re-run after new
// tests only runs the mutants those tests or the changed code touch. The areas together mutate exactly
// what stryker.config.mjs mutates, so the merged score is the score of the full run:
//
//   node scripts/mutation-area.mjs crypto            # one area (STRYKER_CONCURRENCY=1 on a busy machine)
//   node scripts/mutation-area.mjs --list            # the areas, their files and tests
//   node scripts/mutation-area.mjs crypto --force    # further arguments go to `stryker run`
//
// Incremental mode re-runs a surviving mutant only when a test was added (a test is known by its file
// and name): after editing an existing test to kill survivors, rename it or pass --force.
//   node scripts/mutation-score.mjs reports/mutation/{crypto,headers,...}.json   # the merged score
import { spawnSync } from 'node:child_process';

const AREAS = {
  crypto: {
    mutate: ['src/crypto/**/*.ts', '!src/crypto/foreign-kdf.ts'],
    tests: ['xts', 'kdf', 'keyfiles', 'suites', 'keyfile-large', 'crypto-edges', 'kdf-wipe', 'no-addon'],
  },
  // foreign-kdf.test.ts checks every derivation at small costs in seconds; the volume tests
  // (foreign-tcrypt, secret) run real iteration counts, 44 s a run: about a mutant a minute.
  'foreign-kdf': { mutate: ['src/crypto/foreign-kdf.ts'], tests: ['foreign-kdf', 'foreign-kdf-wipe'] },
  headers: {
    mutate: ['src/container/header.ts', 'src/container/header-pair.ts', 'src/container/access.ts'],
    tests: [
      'header-body',
      'header-state',
      'header-unlock',
      'kdf-wipe',
      'unlock-rules',
      'truncated',
      'api-edges',
      'vectors-v1',
      'header-body-wipe',
      'refusal-hints',
    ],
  },
  vault: {
    mutate: [
      'src/container/vault.ts',
      'src/container/file.ts',
      'src/container/layout.ts',
      'src/container/errors.ts',
      'src/container/vault-suites.ts',
      'src/container/warnings.ts',
      'src/container/index.ts',
      'src/container/block-device.ts',
    ],
    tests: [
      'api-edges',
      'vault-data',
      'file-io',
      'file-sync',
      'file-allocate',
      'suites',
      'container',
      'layout',
      'vault-paths',
      'vault-unaligned',
      'allocate-fallback',
    ],
  },
  secret: {
    mutate: ['src/container/secret.ts', 'src/container/staged-file.ts'],
    tests: ['secret', 'staged-file', 'cli-secrets', 'header-unlock', 'secret-keyfile-heads', 'refusal-hints'],
  },
  manage: {
    mutate: [
      'src/container/create.ts',
      'src/container/manage.ts',
      'src/container/resize.ts',
      'src/container/hidden.ts',
    ],
    tests: [
      'container',
      'header-faults',
      'resize',
      'hidden',
      'hidden-existing',
      'hidden-add-checks',
      'power-cut',
      'randomness',
      'hidden-room',
      'manage-edges',
      'resize-edges',
      'create-edges',
    ],
  },
  image: {
    mutate: ['src/container/image.ts', 'src/container/fs-usage.ts'],
    tests: ['image', 'image-edges', 'fs-usage', 'fs-usage-exact', 'image-read-only'],
  },
  foreign: {
    mutate: [
      'src/container/foreign-volume.ts',
      'src/container/formats/**/*.ts',
      'src/container/volume.ts',
      'src/container/volume-types.ts',
    ],
    // foreign-fast.test.ts: the same formats at the smallest costs (1-3 MiB volumes, PIM 1, named hash),
    // a test well under a second; foreign-luks and foreign-tcrypt take 150 s a run (real costs,
    // VeraCrypt's Argon2id, cryptsetup's cross-checks) and cover what only they can.
    // foreign-edges (ForeignVolume over volumes built in the test), foreign-headers (forged LUKS1/LUKS2
    // and VeraCrypt headers) and foreign-wipes (the unlock's key material, seen where it is made).
    tests: ['foreign-fast', 'foreign-edges', 'foreign-headers', 'foreign-wipes'],
  },
  fuse: {
    mutate: ['src/fuse/host-file.ts', 'src/fuse/passthrough-device.ts'],
    tests: [
      'host-file',
      'file-allocate',
      'passthrough-device',
      'power-cut',
      'passthrough-sync',
      'allocate-fallback',
      'refusal-hints',
    ],
  },
};

const [name, ...extra] = process.argv.slice(2);
if (!name || name === '--list' || !(name in AREAS)) {
  for (const [area, { mutate, tests }] of Object.entries(AREAS)) {
    console.log(
      `${area}\n  mutate: ${mutate.join(' ')}\n  tests:  ${tests.map((t) => `${t}.test.ts`).join(' ')}`,
    );
  }
  process.exit(name && name !== '--list' ? 2 : 0);
}

const area = AREAS[name];
const report = `reports/mutation/${name}`;
const result = spawnSync(
  'npx',
  [
    'stryker',
    'run',
    '--mutate',
    area.mutate.join(','),
    '--reporters',
    'json,html,clear-text,progress-append-only',
    '--incremental',
    '--incrementalFile',
    `${report}.incremental.json`,
    ...extra,
  ],
  {
    stdio: 'inherit',
    env: {
      ...process.env,
      STRYKER_REPORT: report,
      STRYKER_TESTS: area.tests.map((test) => `${test}.test.ts`).join(','),
    },
  },
);
process.exit(result.status ?? 1);
