// Secret options as scripts use them: --cost validation, keyfile-only secrets, and the "missing secret"
// error that --non-interactive and a missing terminal must give instead of hanging on a prompt.
// (--password-stdin and the real prompt are tested by spawning bin/vault: test/e2e/cli-secrets.test.ts.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { addCostOption, addSecretOptions, parseCost, readSecret } from '../../src/cli/secrets.js';
import { isVaultError } from '../../src/container/errors.js';
import { Secret } from '../../src/container/secret.js';
import { DEFAULT_COST_LEVEL, MAX_COST_LEVEL, MIN_COST_LEVEL } from '../../src/crypto/kdf.js';

const dir = mkdtempSync(join(tmpdir(), 'vault-cli-secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function caught(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('parseCost', () => {
  it('defaults to DEFAULT_COST_LEVEL and accepts the whole range', () => {
    expect(parseCost({})).toBe(DEFAULT_COST_LEVEL);
    expect(parseCost({ cost: String(MIN_COST_LEVEL) })).toBe(MIN_COST_LEVEL);
    expect(parseCost({ cost: String(MAX_COST_LEVEL) })).toBe(MAX_COST_LEVEL);
    expect(parseCost({ cost: '7' })).toBe(7);
  });

  it.each([String(MIN_COST_LEVEL - 1), String(MAX_COST_LEVEL + 1), '1.5', 'x', '', '-3', '1e1', '0x5'])(
    'refuses %j with a usage error naming the range',
    (cost) => {
      const error = caught(() => parseCost({ cost }));
      expect(isVaultError(error, 'USAGE')).toBe(true);
      expect((error as Error).message).toContain(`${MIN_COST_LEVEL} to ${MAX_COST_LEVEL}`);
    },
  );
});

describe('addSecretOptions / addCostOption', () => {
  it('collects repeated -k/--keyfile and the flags commands read', () => {
    const command = addCostOption(addSecretOptions(new Command('x').exitOverride()));
    command.parse(
      ['-k', 'a.key', '--keyfile', 'b.key', '--password-stdin', '--non-interactive', '--cost', '3'],
      {
        from: 'user',
      },
    );
    expect(command.opts()).toEqual({
      keyfile: ['a.key', 'b.key'],
      passwordStdin: true,
      nonInteractive: true,
      cost: '3',
    });
  });

  it('offers no option that takes a password on the command line', () => {
    const command = addCostOption(addSecretOptions(new Command('x')));
    const flags = command.options.map((option) => option.flags).join(' ');
    expect(flags).not.toMatch(/pass(word)?\s*</i);
    expect(flags).not.toMatch(/--pass(word)?[ ,]/);
  });
});

describe('readSecret without a terminal', () => {
  const keyfile = join(dir, 'one.key');
  writeFileSync(keyfile, 'keyfile bytes');

  it('--non-interactive with no keyfile fails with MISSING_SECRET and a hint', async () => {
    const error = await readSecret({ nonInteractive: true }, { prompt: 'Password: ' }).catch(
      (e: unknown) => e,
    );
    expect(isVaultError(error, 'MISSING_SECRET')).toBe(true);
    expect((error as { hint?: string }).hint).toMatch(/--password-stdin.*-k/);
  });

  it('keyfiles alone are a secret, equal to Secret.fromInputs with no password', async () => {
    const secret = await readSecret({ nonInteractive: true, keyfile: [keyfile] }, { prompt: 'Password: ' });
    const expected = await Secret.fromInputs({ keyfiles: [keyfile] });
    expect(secret.material.equals(expected.material)).toBe(true);
    secret.wipe();
    expected.wipe();
  });

  it('request.keyfiles replaces --keyfile (the new secret of passwd / key add)', async () => {
    const other = join(dir, 'two.key');
    writeFileSync(other, 'other keyfile');
    const secret = await readSecret(
      { nonInteractive: true, keyfile: [keyfile] },
      { prompt: 'New password: ', keyfiles: [other] },
    );
    const expected = await Secret.fromInputs({ keyfiles: [other] });
    expect(secret.material.equals(expected.material)).toBe(true);
  });

  it('a missing keyfile is NOT_FOUND', async () => {
    const error = await readSecret(
      { nonInteractive: true, keyfile: [join(dir, 'absent.key')] },
      { prompt: 'Password: ' },
    ).catch((e: unknown) => e);
    expect(isVaultError(error, 'NOT_FOUND')).toBe(true);
  });
});
