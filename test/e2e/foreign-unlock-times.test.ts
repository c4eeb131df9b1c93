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

// Opt-in on purpose, not a missing prerequisite: this is the only e2e skip that does not go through
// lacks()/skipTest() in helpers.ts, so VAULT_REQUIRE_E2E=1 (CI) does not turn it into a failure.
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
    for (const [name, args, kdf] of [
      ['LUKS2 aes-xts-plain64, Argon2i', ['--type', 'luks2', '--pbkdf', 'argon2i'], 'Argon2i'],
      ['LUKS2 aes-xts-plain64, PBKDF2', ['--type', 'luks2', '--pbkdf', 'pbkdf2'], 'PBKDF2-SHA256'],
      ['LUKS2 aes-xts-plain64, 4096-byte sectors', ['--type', 'luks2', '--sector-size', '4096'], 'Argon2id'],
      ['LUKS1 aes-xts-plain64, SHA-512', ['--type', 'luks1', '--hash', 'sha512'], 'PBKDF2-SHA512'],
      ['LUKS1 aes-xts-plain64, SHA-1', ['--type', 'luks1', '--hash', 'sha1'], 'PBKDF2-SHA1'],
    ] as Array<[string, string[], string]>) {
      const made = await luks(`${name.replace(/[^a-z0-9]+/gi, '-')}.luks`, args);
      const cost = [/Memory:\s+(\d+)/, /Time cost:\s+(\d+)/, /Threads:\s+(\d+)/, /Iterations:\s+(\d+)/]
        .map((pattern) => pattern.exec(made.dump)?.[1])
        .filter((value) => value !== undefined);
      await row(name, `${kdf} ${cost.join('/')}`, 'cryptsetup luksFormat', made.file, ['--type', 'luks']);
    }
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
      ['whirlpool', 500_000],
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
    // VeraCrypt's Argon2id at its default (no PIM: 416 MiB, 6 passes, 1 lane).
    const argon = join(dir, 'vc-argon2.hc');
    await writeTcryptVolume(argon, {
      flavour: 'veracrypt',
      prf: 'argon2',
      iterations: 0,
      pim: 0,
      password: Buffer.from(PASSWORD),
      fileSize: 4 << 20,
    });
    await row(
      'VeraCrypt AES-XTS',
      'Argon2id 416 MiB, t=6, p=1 (default PIM)',
      'test writer (@noble/hashes Argon2id)',
      argon,
      ['--type', 'veracrypt', '--hash', 'argon2'],
      // Detection tries VeraCrypt's Argon2id only for a volume named VeraCrypt (docs/CLI.md).
      ['--type', 'veracrypt'],
    );
    const truecrypt: Array<[Prf, number]> = [
      ['ripemd160', 2000],
      ['sha512', 1000],
      ['whirlpool', 1000],
      ['sha1', 2000],
    ];
    for (const [prf, count] of truecrypt) {
      const tc = join(dir, `tc-${prf}.tc`);
      await writeTcryptVolume(tc, {
        flavour: 'truecrypt',
        prf,
        iterations: count,
        password: Buffer.from(PASSWORD),
        fileSize: 4 << 20,
      });
      await row(
        'TrueCrypt AES-XTS',
        `PBKDF2-${prf} ${count}`,
        'test writer + cryptsetup tcryptDump (tcplay in foreign.test.ts)',
        tc,
        ['--type', 'truecrypt', '--hash', prf],
      );
    }
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
