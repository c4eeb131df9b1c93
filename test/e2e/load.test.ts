// Load with verification (issue 7): fio writes with crc32c verification headers, two jobs at once (one
// sequential, one random with mixed block sizes), into a file inside a mounted vault and straight into
// the cleartext block file of a --no-filesystem mount. fio verifies inline, then the vault is dismounted,
// mounted again and fio verifies every block once more (--verify_only), so what is checked came back
// through the cipher from the container file. Zero verification errors allowed.
// 256 MiB of writes per target in `npm test`, 1.25 GiB with VAULT_SOAK=1.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FAST_COST, lacks, leftovers, sh, useSuiteDir, vault } from './helpers.js';

const SOAK = process.env.VAULT_SOAK === '1';
/** Bytes each of the two jobs writes. */
const JOB_MIB = SOAK ? 640 : 128;
const VAULT_SIZE = `${2 * JOB_MIB + 256}M`;
const PASSWORD = `load ${process.pid}`;
const secretArgs = ['--password-stdin', '--non-interactive', '--cost', FAST_COST];

/** Two jobs over disjoint ranges of one target, sequential and random, crc32c verification headers. */
function jobFile(target: string, onFile: boolean): string {
  const common = [
    '[global]',
    'ioengine=psync',
    'verify=crc32c',
    'verify_fatal=1',
    'verify_dump=0',
    'verify_state_save=0',
    'randrepeat=1',
    'end_fsync=1',
    `size=${JOB_MIB}m`,
  ];
  const place = (index: number) =>
    onFile
      ? [`filename=${join(target, `load-${index}.bin`)}`]
      : [`filename=${target}`, `offset=${index * JOB_MIB}m`];
  return [
    ...common,
    '[sequential]',
    'rw=write',
    'bs=1m',
    ...place(0),
    '[random]',
    'rw=randwrite',
    'bsrange=4k-64k',
    ...place(1),
    '',
  ].join('\n');
}

interface FioJob {
  jobname: string;
  error: number;
  write: { io_bytes: number };
  read: { io_bytes: number };
}

async function fio(jobs: string, extra: string[] = []): Promise<FioJob[]> {
  const result = await sh('fio', ['--output-format=json', ...extra, jobs], 600_000);
  expect(result.code, `fio failed:\n${result.stdout}\n${result.stderr}`).toBe(0);
  const parsed = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as { jobs: FioJob[] };
  return parsed.jobs;
}

describe.skipIf(lacks('mount', 'fio'))('fio with verification', () => {
  let dir = '';
  useSuiteDir('vault-load-', (made) => {
    dir = made;
  });

  const written = { filesystem: 0, blockFile: 0 };

  afterAll(() => {
    const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
    console.log(
      `fio: ${mib(written.filesystem)} MiB written and verified in ext4, ${mib(written.blockFile)} MiB on the block file`,
    );
  });

  it(`${2 * JOB_MIB} MiB into a file inside the mounted ext4, verified again after remounting`, {
    timeout: 1_200_000,
  }, async () => {
    const file = join(dir, 'fs.vol');
    const created = await vault(['create', VAULT_SIZE, file, ...secretArgs], { stdin: `${PASSWORD}\n` });
    expect(created.code, created.stderr).toBe(0);
    const mountpoint = join(dir, 'mnt');
    mkdirSync(mountpoint);
    const jobs = join(dir, 'fs.fio');
    writeFileSync(jobs, jobFile(mountpoint, true));
    const mount = () => vault(['mount', file, mountpoint, ...secretArgs], { stdin: `${PASSWORD}\n` });

    expect((await mount()).code).toBe(0);
    const first = await fio(jobs);
    expect(first.map((job) => job.error)).toEqual([0, 0]);
    for (const job of first) expect(job.write.io_bytes).toBe(JOB_MIB * 2 ** 20);
    written.filesystem = first.reduce((sum, job) => sum + job.write.io_bytes, 0);
    expect((await vault(['dismount', mountpoint])).code).toBe(0);

    expect((await mount()).code).toBe(0);
    const again = await fio(jobs, ['--verify_only']);
    expect(again.map((job) => job.error)).toEqual([0, 0]);
    for (const job of again) expect(job.read.io_bytes).toBeGreaterThanOrEqual(JOB_MIB * 2 ** 20);
    expect((await vault(['dismount', mountpoint])).code).toBe(0);
    expect(leftovers(dir)).toEqual([]);
  });

  it(`${2 * JOB_MIB} MiB straight into the block file (--no-filesystem), verified again after remounting`, {
    timeout: 1_200_000,
  }, async () => {
    const file = join(dir, 'raw.vol');
    const created = await vault(['create', VAULT_SIZE, file, '--filesystem', 'none', ...secretArgs], {
      stdin: `${PASSWORD}\n`,
    });
    expect(created.code, created.stderr).toBe(0);
    const mount = async () => {
      const result = await vault(['mount', file, '--no-filesystem', ...secretArgs], {
        stdin: `${PASSWORD}\n`,
      });
      expect(result.code, result.stderr).toBe(0);
      return result.stdout.trim();
    };
    const jobs = join(dir, 'raw.fio');
    writeFileSync(jobs, jobFile(await mount(), false));
    const first = await fio(jobs);
    expect(first.map((job) => job.error)).toEqual([0, 0]);
    for (const job of first) expect(job.write.io_bytes).toBe(JOB_MIB * 2 ** 20);
    written.blockFile = first.reduce((sum, job) => sum + job.write.io_bytes, 0);
    expect((await vault(['dismount', file])).code).toBe(0);

    // The block file's path depends only on the vault's device and inode: the job file still fits.
    await mount();
    const again = await fio(jobs, ['--verify_only']);
    expect(again.map((job) => job.error)).toEqual([0, 0]);
    for (const job of again) expect(job.read.io_bytes).toBeGreaterThanOrEqual(JOB_MIB * 2 ** 20);
    expect((await vault(['dismount', file])).code).toBe(0);

    // Control: one damaged data sector in the container makes the same verification fail.
    const damaged = await sh('dd', [
      'if=/dev/urandom',
      `of=${file}`,
      'bs=4096',
      'count=1',
      `seek=${131072 / 4096 + 100}`,
      'conv=notrunc',
    ]);
    expect(damaged.code, damaged.stderr).toBe(0);
    await mount();
    const caught = await sh('fio', ['--output-format=json', '--verify_only', jobs], 600_000);
    expect(caught.code, 'fio must notice a damaged sector').not.toBe(0);
    expect((await vault(['dismount', file])).code).toBe(0);
    expect(leftovers(dir)).toEqual([]);
  });
});
