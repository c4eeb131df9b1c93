// Measures `vault info` wall time (process start included) for each foreign variant made with the real
// tool's default KDF cost, with detection and with --type. Not part of the normal run (minutes of KDF
// time): VAULT_BENCH_FOREIGN=1 npx vitest run --project e2e test/e2e/foreign-unlock-times.test.ts
import { writeFileSync } from 'node:fs';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import type { Prf } from '../../src/crypto/foreign-kdf.js';
import { writeTcryptVolume } from '../tools/tcrypt-writer.js';
import { sh, useTempDir, vault } from './helpers.js';

const PASSWORD = 'timing password';
let dir = '';
useTempDir('vault-unlock-times-', (created) => {
  dir = created;
});

async function timeInfo(file: string, args: string[]): Promise<string> {
  const started = performance.now();
  const result = await vault(['info', file, '--json', '--password-stdin', '--non-interactive', ...args], {
    stdin: `${PASSWORD}\n`,
    timeoutMs: 600_000,
  });
  const seconds = (performance.now() - started) / 1000;
  expect(result.code, result.stderr).toBe(0);
  return `${seconds.toFixed(2)} s`;
}

describe.skipIf(process.env.VAULT_BENCH_FOREIGN !== '1')('unlock times', () => {
  it('prints a table', async () => {
    const rows: string[] = [];
    const row = async (
      what: string,
      kdf: string,
      tool: string,
      file: string,
      typeArgs: string[],
      autoArgs: string[] = [],
    ) => {
      rows.push(
        `| ${what} | ${kdf} | ${tool} | ${await timeInfo(file, autoArgs)} | ${await timeInfo(file, typeArgs)} |`,
      );
    };
    writeFileSync(join(dir, 'pass'), PASSWORD);
    const luks = async (name: string, args: string[]) => {
      const file = join(dir, name);
      await writeFile(file, Buffer.alloc(0));
      await truncate(file, 32 << 20);
      const made = await sh(
        'cryptsetup',
        ['luksFormat', '-q', '--key-file', join(dir, 'pass'), ...args, file],
        300_000,
      );
      expect(made.code, made.stderr).toBe(0);
      const dump = await sh('cryptsetup', ['luksDump', file]);
      return { file, dump: dump.stdout };
    };
    const l2 = await luks('default.luks2', ['--type', 'luks2']);
    const memory = /Memory:\s+(\d+)/.exec(l2.dump)?.[1];
    const passes = /Time cost:\s+(\d+)/.exec(l2.dump)?.[1];
    const lanes = /Threads:\s+(\d+)/.exec(l2.dump)?.[1];
    await row(
      'LUKS2 aes-xts-plain64 (cryptsetup default)',
      `Argon2id ${memory} KiB, t=${passes}, p=${lanes}`,
      'cryptsetup luksFormat',
      l2.file,
      ['--type', 'luks'],
    );
    const l1 = await luks('default.luks1', ['--type', 'luks1']);
    const iterations = /Iterations:\s+(\d+)/.exec(l1.dump);
    await row(
      'LUKS1 aes-xts-plain64 (cryptsetup default)',
      `PBKDF2-SHA256 ${iterations?.[1]}`,
      'cryptsetup luksFormat',
      l1.file,
      ['--type', 'luks'],
    );
    const essiv = await luks('essiv.luks1', [
      '--type',
      'luks1',
      '--cipher',
      'aes-cbc-essiv:sha256',
      '--key-size',
      '256',
    ]);
    const essivIterations = /Iterations:\s+(\d+)/.exec(essiv.dump);
    await row(
      'LUKS1 aes-cbc-essiv:sha256',
      `PBKDF2-SHA256 ${essivIterations?.[1]}`,
      'cryptsetup luksFormat',
      essiv.file,
      ['--type', 'luks'],
    );

    const veracrypt: Array<[Prf, number]> = [
      ['sha512', 500_000],
      ['sha256', 500_000],
      ['blake2s-256', 500_000],
      ['ripemd160', 655_331],
    ];
    for (const [prf, count] of veracrypt) {
      const file = join(dir, `vc-${prf}.hc`);
      await writeTcryptVolume(file, {
        flavour: 'veracrypt',
        prf,
        iterations: count,
        password: Buffer.from(PASSWORD),
        fileSize: 4 << 20,
      });
      await row(`VeraCrypt AES-XTS`, `PBKDF2-${prf} ${count}`, 'test writer + cryptsetup tcryptDump', file, [
        '--type',
        'veracrypt',
        '--hash',
        prf,
      ]);
    }
    const vc = join(dir, 'vc-pim.hc');
    await writeTcryptVolume(vc, {
      flavour: 'veracrypt',
      prf: 'sha512',
      iterations: 15000 + 1000 * 10,
      password: Buffer.from(PASSWORD),
      fileSize: 4 << 20,
    });
    await row(
      'VeraCrypt AES-XTS, PIM 10',
      'PBKDF2-sha512 25000',
      'test writer + cryptsetup tcryptDump',
      vc,
      ['--type', 'veracrypt', '--pim', '10'],
      ['--pim', '10'],
    );
    const tc = join(dir, 'tc.tc');
    await writeTcryptVolume(tc, {
      flavour: 'truecrypt',
      prf: 'ripemd160',
      iterations: 2000,
      password: Buffer.from(PASSWORD),
      fileSize: 4 << 20,
    });
    await row('TrueCrypt AES-XTS', 'PBKDF2-ripemd160 2000', 'test writer (tcplay in foreign.test.ts)', tc, [
      '--type',
      'truecrypt',
    ]);
    const own = join(dir, 'own.vol');
    const created = await vault(
      ['create', '4M', own, '--password-stdin', '--non-interactive', '--filesystem', 'none'],
      { stdin: `${PASSWORD}\n` },
    );
    expect(created.code, created.stderr).toBe(0);
    await row('vault v1 (for comparison)', 'Argon2id cost 12 (1 GiB, t=2, p=2)', 'vault create', own, [
      '--type',
      'vault',
    ]);
    process.stdout.write(
      `\n| format | PRF/KDF | made by | auto-detect | with --type |\n| --- | --- | --- | --- | --- |\n${rows.join('\n')}\n`,
    );
  }, 1_800_000);
});
