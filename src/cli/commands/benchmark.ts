// `vault benchmark`: what this machine does, like `cryptsetup benchmark`. XTS-AES-256 throughput for
// the batches the FUSE bridge uses (32 sectors = 128 KiB) per available implementation, and the time and
// memory of each Argon2id cost level, recommending the default unless it is too slow here (the level is
// not stored, so any other one must be typed at every unlock).
import type { Command } from 'commander';
import {
  costMemoryCheck,
  costParams,
  DEFAULT_COST_LEVEL,
  deriveKdf,
  KDF_SALT_BYTES,
  MAX_COST_LEVEL,
  MIN_COST_LEVEL,
} from '../../crypto/kdf.js';
import { randomBytes } from '../../crypto/random.js';
import {
  activeXtsImplementation,
  availableXtsImplementations,
  createXts,
  SECTOR_SIZE,
  XTS_KEY_BYTES,
  type XtsImplementation,
} from '../../crypto/xts.js';
import { printJson, printTable } from '../output.js';
import { createProgress } from '../progress.js';
import { formatSize } from '../size.js';

export const BATCH_SECTORS = 32;
export const TARGET_UNLOCK_SECONDS = 1;
/** Levels above the default worth showing: enough to see the trend without minutes of waiting. */
const LEVELS_ABOVE_DEFAULT = 2;
/** Once a level takes this long, the slower ones after it are not run. */
const GIVE_UP_SECONDS = 6;
const XTS_SECONDS_PER_RUN = 0.5;

export interface XtsResult {
  implementation: XtsImplementation;
  active: boolean;
  encryptMiBps: number;
  decryptMiBps: number;
}

export interface KdfLevelResult {
  level: number;
  memoryKiB: number;
  iterations: number;
  parallelism: number;
  /** Wall time of one derivation, or null when skipped. */
  seconds: number | null;
  /** Why the level was not run, or null. */
  skipped: string | null;
}

export interface BenchmarkReport {
  xts: { sectorSize: number; batchSectors: number; active: XtsImplementation; results: XtsResult[] };
  kdf: {
    algorithm: 'argon2id';
    defaultLevel: number;
    targetSeconds: number;
    recommendedLevel: number | null;
    levels: KdfLevelResult[];
  };
}

export function register(program: Command): void {
  program
    .command('benchmark')
    .description('measure XTS-AES-256 throughput and Argon2id cost levels on this machine')
    .option('--json', 'print the results as JSON (schema in docs/CLI.md)')
    .addHelpText(
      'after',
      '\nExamples:\n  vault benchmark\n  vault benchmark --json | jq .kdf.recommendedLevel\n\n' +
        'The cost level is not stored in a vault: the level you choose with `vault create --cost N`\n' +
        'must be given again (--cost N) at every unlock.',
    )
    .action(async (options: { json?: boolean }) => {
      const report = await runBenchmark();
      if (options.json) printJson(report);
      else printReport(report);
    });
}

export async function runBenchmark(): Promise<BenchmarkReport> {
  const implementations = availableXtsImplementations();
  const lastLevel = Math.min(MAX_COST_LEVEL, DEFAULT_COST_LEVEL + LEVELS_ABOVE_DEFAULT);
  const progress = createProgress('benchmark', implementations.length + (lastLevel - MIN_COST_LEVEL + 1), {
    unit: 'items',
  });
  let step = 0;
  try {
    const active = activeXtsImplementation();
    const results: XtsResult[] = [];
    for (const implementation of implementations) {
      results.push({ ...measureXts(implementation), active: implementation === active });
      progress.update(++step);
    }
    const levels: KdfLevelResult[] = [];
    let tooSlow = false;
    for (let level = MIN_COST_LEVEL; level <= lastLevel; level += 1) {
      const result = await measureLevel(level, tooSlow);
      if (result.seconds !== null && result.seconds > GIVE_UP_SECONDS) tooSlow = true;
      levels.push(result);
      progress.update(++step);
    }
    progress.done();
    return {
      xts: { sectorSize: SECTOR_SIZE, batchSectors: BATCH_SECTORS, active, results },
      kdf: {
        algorithm: 'argon2id',
        defaultLevel: DEFAULT_COST_LEVEL,
        targetSeconds: TARGET_UNLOCK_SECONDS,
        recommendedLevel: recommendLevel(levels),
        levels,
      },
    };
  } finally {
    progress.done();
  }
}

function measureXts(implementation: XtsImplementation): Omit<XtsResult, 'active'> {
  const key = randomBytes(XTS_KEY_BYTES);
  const cipher = createXts(key, { implementation });
  key.fill(0);
  const batch = Buffer.alloc(BATCH_SECTORS * SECTOR_SIZE);
  try {
    const rate = (run: (sector: number) => void): number => {
      run(0); // warm-up: first-call costs are not throughput
      let bytes = 0;
      let sector = 0;
      const started = performance.now();
      let elapsed = 0;
      while (elapsed < XTS_SECONDS_PER_RUN * 1000) {
        for (let i = 0; i < 16; i += 1) {
          run(sector);
          sector += BATCH_SECTORS;
          bytes += batch.length;
        }
        elapsed = performance.now() - started;
      }
      return bytes / 1048576 / (elapsed / 1000);
    };
    return {
      implementation,
      encryptMiBps: Math.round(rate((sector) => cipher.encrypt(batch, sector))),
      decryptMiBps: Math.round(rate((sector) => cipher.decrypt(batch, sector))),
    };
  } finally {
    cipher.destroy();
  }
}

async function measureLevel(level: number, tooSlow: boolean): Promise<KdfLevelResult> {
  const params = costParams(level);
  const base = {
    level,
    memoryKiB: params.memoryKiB,
    iterations: params.iterations,
    parallelism: params.parallelism,
  };
  if (tooSlow) return { ...base, seconds: null, skipped: `a lower level took over ${GIVE_UP_SECONDS} s` };
  const memory = costMemoryCheck(level);
  if (!memory.fits) {
    return {
      ...base,
      seconds: null,
      skipped: `needs ${formatSize(memory.neededBytes)}, ${formatSize(memory.availableBytes)} available`,
    };
  }
  const material = randomBytes(64);
  const salt = randomBytes(KDF_SALT_BYTES);
  const started = performance.now();
  const output = await deriveKdf(material, salt, level);
  const seconds = (performance.now() - started) / 1000;
  output.fill(0);
  material.fill(0);
  return { ...base, seconds: Math.round(seconds * 1000) / 1000, skipped: null };
}

/**
 * The default level will do up to this long an unlock: the level is not stored in the vault, so any
 * other level must be typed (--cost) at every unlock, and forgetting it looks like a wrong password.
 */
export const DEFAULT_GOOD_UP_TO_SECONDS = 5;

/**
 * The default level when it was measured and unlocks within DEFAULT_GOOD_UP_TO_SECONDS; otherwise (a slow
 * machine, or not enough memory for it) the measured level whose time is closest to TARGET_UNLOCK_SECONDS
 * (the higher one on a tie).
 */
export function recommendLevel(levels: readonly KdfLevelResult[]): number | null {
  const atDefault = levels.find((result) => result.level === DEFAULT_COST_LEVEL);
  if (atDefault?.seconds != null && atDefault.seconds <= DEFAULT_GOOD_UP_TO_SECONDS)
    return DEFAULT_COST_LEVEL;
  let best: KdfLevelResult | null = null;
  for (const result of levels) {
    if (result.seconds === null) continue;
    if (
      best === null ||
      Math.abs(result.seconds - TARGET_UNLOCK_SECONDS) <=
        Math.abs((best.seconds ?? 0) - TARGET_UNLOCK_SECONDS)
    ) {
      best = result;
    }
  }
  return best?.level ?? null;
}

/** The advice under the table: the default needs nothing; any other level is a promise to keep. */
export function recommendation(recommended: KdfLevelResult): string {
  const cost = `about ${(recommended.seconds ?? 0).toFixed(1)} s and ${formatSize(recommended.memoryKiB * 1024)} per unlock here`;
  if (recommended.level === DEFAULT_COST_LEVEL) {
    return `Recommended: the default, level ${DEFAULT_COST_LEVEL} (${cost}); leave out --cost.`;
  }
  return (
    `Recommended: --cost ${recommended.level} (${cost}), because the default level ${DEFAULT_COST_LEVEL} takes ` +
    `longer than ${DEFAULT_GOOD_UP_TO_SECONDS} s here or does not fit in memory.\n` +
    `The level is NOT stored in the vault: every unlock of such a vault needs --cost ${recommended.level}, on ` +
    'every machine, and forgetting it looks exactly like a wrong password. Write it down with the vault.'
  );
}

function printReport(report: BenchmarkReport): void {
  const out = process.stdout;
  out.write(
    `# XTS-AES-256, ${report.xts.sectorSize}-byte sectors, ${report.xts.batchSectors}-sector batches, one core\n`,
  );
  printTable(
    report.xts.results.map((result) => ({
      implementation: result.implementation + (result.active ? ' (active)' : ''),
      encrypt: `${result.encryptMiBps} MiB/s`,
      decrypt: `${result.decryptMiBps} MiB/s`,
    })),
    ['implementation', { key: 'encrypt', align: 'right' }, { key: 'decrypt', align: 'right' }],
  );
  out.write('\n# Argon2id cost levels (--cost)\n');
  printTable(
    report.kdf.levels.map((result) => ({
      level: String(result.level) + (result.level === report.kdf.defaultLevel ? ' (default)' : ''),
      memory: formatSize(result.memoryKiB * 1024),
      passes: String(result.iterations),
      threads: String(result.parallelism),
      time: result.seconds === null ? `skipped: ${result.skipped ?? ''}` : `${result.seconds.toFixed(2)} s`,
    })),
    [
      'level',
      { key: 'memory', align: 'right' },
      { key: 'passes', align: 'right' },
      { key: 'threads', align: 'right' },
      { key: 'time', align: 'right' },
    ],
  );
  const recommended = report.kdf.levels.find((result) => result.level === report.kdf.recommendedLevel);
  if (recommended?.seconds != null) out.write(`\n${recommendation(recommended)}\n`);
  else {
    out.write('\nNo level could be measured: not enough free memory for Argon2id.\n');
  }
}
