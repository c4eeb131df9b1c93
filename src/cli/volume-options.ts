// The options that say which kind of volume a command opens (docs/CLI.md "Foreign volumes"):
// --type vault|luks|veracrypt|truecrypt, --hash (VeraCrypt/TrueCrypt PBKDF2 hash, or argon2 for
// VeraCrypt's Argon2id), --pim (VeraCrypt).
import type { Command } from 'commander';
import { VaultError } from '../container/errors.js';
import type { VolumeOpenOptions } from '../container/volume.js';
import { VOLUME_TYPES, type VolumeType } from '../container/volume-types.js';
import type { Prf } from '../crypto/foreign-kdf.js';

/**
 * The --hash names for the help text: foreign-kdf.ts PRFS, written out so that `vault mount` does not
 * load the foreign KDFs (and their hash code) on every run. A unit test keeps the two lists equal.
 */
export const HASH_NAMES = ['sha1', 'sha256', 'sha512', 'ripemd160', 'whirlpool', 'blake2s-256'] as const;

export interface VolumeTypeOptions {
  type?: string;
  hash?: string;
  pim?: string;
}

export function addVolumeTypeOptions(command: Command): Command {
  return command
    .option(
      '--type <type>',
      'the volume format: vault, luks, veracrypt or truecrypt (default: detect, vault and LUKS first)',
    )
    .option(
      '--hash <name>',
      `VeraCrypt/TrueCrypt KDF to try only: PBKDF2 with ${HASH_NAMES.join(', ')}, or argon2 (VeraCrypt's Argon2id)`,
    )
    .option('--pim <n>', "VeraCrypt's PIM (Personal Iterations Multiplier) used when the volume was made");
}

/** The parsed --type/--hash/--pim, ready for openVolume. Throws VaultError USAGE. */
export async function parseVolumeTypeOptions(
  options: VolumeTypeOptions,
): Promise<Pick<VolumeOpenOptions, 'type' | 'hash' | 'pim'>> {
  const parsed: Pick<VolumeOpenOptions, 'type' | 'hash' | 'pim'> = {};
  if (options.type !== undefined) {
    const type = options.type.toLowerCase() as VolumeType;
    if (!VOLUME_TYPES.includes(type)) {
      throw new VaultError(
        'USAGE',
        `unknown volume type "${options.type}"`,
        `--type is one of ${VOLUME_TYPES.join(', ')}; leave it out to detect`,
      );
    }
    parsed.type = type;
  }
  if (options.hash !== undefined) {
    if (/^argon2(id)?$/i.test(options.hash.trim())) {
      parsed.hash = 'argon2';
    } else {
      parsed.hash = await parseHash(options.hash);
    }
  }
  if (options.pim !== undefined) {
    const text = String(options.pim).trim();
    const pim = /^\d{1,7}$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(pim) || pim < 1 || pim > 2_000_000) {
      throw new VaultError(
        'USAGE',
        `invalid PIM "${options.pim}"`,
        'the PIM is a whole number from 1 up (VeraCrypt)',
      );
    }
    parsed.pim = pim;
  }
  if (parsed.type === 'vault' && (parsed.hash !== undefined || parsed.pim !== undefined)) {
    throw new VaultError(
      'USAGE',
      '--hash and --pim are for VeraCrypt and TrueCrypt volumes',
      'vaults use --cost',
    );
  }
  return parsed;
}

async function parseHash(name: string): Promise<Prf> {
  const { parsePrf, prfAvailable, PRFS } = await import('../crypto/foreign-kdf.js');
  const prf = parsePrf(name);
  if (!prf) {
    throw new VaultError('USAGE', `unknown hash "${name}"`, `--hash is one of ${PRFS.join(', ')}, argon2`);
  }
  if (!prfAvailable(prf)) {
    throw new VaultError(
      'NEEDS_SYSTEM',
      `${prf} is not available in this Node.js (OpenSSL keeps it in its legacy provider)`,
      'build the native addon (npm ci), or run vault with NODE_OPTIONS=--openssl-legacy-provider',
    );
  }
  return prf;
}
