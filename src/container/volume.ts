// Opening any volume vault understands: its own format, LUKS1/LUKS2, VeraCrypt and TrueCrypt.
// Detection, cheapest first: the LUKS magic (no KDF), the vault format (one Argon2id run), TrueCrypt
// (PBKDF2 with 1000-2000 iterations: ~1/250 of VeraCrypt's cost), then VeraCrypt (normal and hidden
// headers, then the backups, for each PBKDF2 hash and last Argon2id). `type` narrows the search.
import { isVaultError, VaultError } from './errors.js';
import { type OpenContainerFile, openContainerFile } from './file.js';
import type { ForeignVolume } from './foreign-volume.js';
import type { ForeignUnlock } from './formats/foreign.js';
import { hasLuksMagic } from './formats/luks-magic.js';
import type { TcryptHash } from './formats/tcrypt.js';
import { isTruncatedVault } from './header-pair.js';
import type { Secret } from './secret.js';
import { isHiddenProtectionFailure, type OpenOptions, openVault, type Vault } from './vault.js';

export type { VolumeType } from './formats/foreign.js';
export type { TcryptHash } from './formats/tcrypt.js';

import type { VolumeType } from './formats/foreign.js';

export { VOLUME_TYPES } from './volume-types.js';

export interface VolumeOpenOptions extends OpenOptions {
  /** Only this format (--type); all of them, cheapest first, when left out. */
  type?: VolumeType;
  /** VeraCrypt/TrueCrypt: only this PBKDF2 hash, or VeraCrypt's Argon2id (--hash). */
  hash?: TcryptHash;
  /** VeraCrypt's PIM (--pim). */
  pim?: number;
}

export type Volume = Vault | ForeignVolume;

/**
 * Opens `path` as whichever format the secret unlocks. The secret must carry its foreign parts
 * (Secret.fromInputs(..., { foreign: true })) for anything but the vault format.
 */
export async function openVolume(
  path: string,
  secret: Secret,
  options: VolumeOpenOptions = {},
): Promise<Volume> {
  const type = options.type;
  // A secret read without its foreign parts can only be a vault's (the library's behaviour before 17).
  if (type === 'vault' || (type === undefined && secret.foreign === null))
    return openVault(path, secret, options);
  if (secret.foreign === null)
    throw new Error('foreign volumes need Secret.fromInputs(..., { foreign: true })');
  if ((options.hash !== undefined || options.pim !== undefined) && type === 'luks') {
    throw new VaultError(
      'USAGE',
      'a hash and a PIM are settings of VeraCrypt and TrueCrypt volumes',
      'leave them out for LUKS: its header names the hash',
      { reason: 'luks-hash-pim' },
    );
  }
  if (options.hash === 'argon2' && type === 'truecrypt') {
    throw new VaultError(
      'USAGE',
      "the argon2 hash is VeraCrypt's Argon2id; TrueCrypt volumes use PBKDF2 only",
      'give no hash, or open it as a VeraCrypt volume',
      { reason: 'truecrypt-argon2' },
    );
  }
  if (options.pim !== undefined && type === 'truecrypt') {
    throw new VaultError(
      'USAGE',
      'a PIM is a VeraCrypt setting; TrueCrypt volumes have none',
      'give no PIM',
      { reason: 'truecrypt-pim' },
    );
  }
  const openFile: OpenContainerFile = options.openFile ?? openContainerFile;
  const tried: VolumeType[] = [];
  // Cheapest first: the LUKS magic needs no KDF, and a file that has it is nothing else.
  if (type === undefined || type === 'luks') {
    const file = await openFile(path, 'read');
    const luks = await hasLuksMagic(file).finally(() => file.close());
    if (luks) return openForeign(path, secret, options, openFile, () => 'luks');
    if (type === 'luks') throw (await foreignFormats()).cannotUnlockAny(['luks']);
  }
  const foreignOnly = options.hash !== undefined || options.pim !== undefined;
  // A vault attempt that could not even run (e.g. its cost level needs more memory than there is)
  // must not hide a VeraCrypt or TrueCrypt volume: it is reported only when nothing else opens.
  let vaultRefusal: VaultError | null = null;
  // The formats a password is too long for, and the refusal of the last (VeraCrypt's limit covers both).
  const tooLongFor: string[] = [];
  let tooLong: VaultError | null = null;
  if (type === undefined && !foreignOnly) {
    try {
      return await openVault(path, secret, options);
    } catch (error) {
      // A truncated vault was opened by this secret: it is a vault, no other format needs trying.
      if (!isVaultError(error) || isHiddenProtectionFailure(error) || isTruncatedVault(error)) throw error;
      if (error.code !== 'CANNOT_UNLOCK') vaultRefusal = error;
      tried.push('vault');
    }
  }
  for (const flavour of ['truecrypt', 'veracrypt'] as const) {
    if (type !== undefined && type !== flavour) continue;
    // A PIM or a hash TrueCrypt never used says VeraCrypt.
    if (
      flavour === 'truecrypt' &&
      (options.pim !== undefined ||
        options.hash === 'sha256' ||
        options.hash === 'blake2s-256' ||
        options.hash === 'argon2')
    )
      continue;
    try {
      return await openForeign(path, secret, options, openFile, () => flavour);
    } catch (error) {
      // The first secret opened this volume but the --protect-hidden one did not: it is this format,
      // and the user must learn that it is the hidden secret that is wrong.
      if (!isVaultError(error, 'CANNOT_UNLOCK') || error.reason === 'protect-hidden-unlock') throw error;
      // Too long for the format: it was not tried as one, and the user learns why.
      if (error.reason === 'foreign-password-too-long') {
        tooLongFor.push(flavour === 'veracrypt' ? 'VeraCrypt' : 'TrueCrypt');
        tooLong = error;
      } else tried.push(flavour);
    }
  }
  if (tried.length === 0 && tooLong) throw tooLong;
  const note = tooLong ? `not tried as ${tooLongFor.join(' or ')}: ${tooLong.message}` : undefined;
  throw vaultRefusal ?? (await foreignFormats()).cannotUnlockAny(tried, note);
}

/**
 * The foreign formats' code (their KDFs pull in @noble/hashes and more), loaded only when a volume is
 * not a vault: a vault's mount does not pay for it.
 */
async function foreignFormats() {
  const [foreign, luks, tcrypt, volume] = await Promise.all([
    import('./formats/foreign.js'),
    import('./formats/luks.js'),
    import('./formats/tcrypt.js'),
    import('./foreign-volume.js'),
  ]);
  return {
    cannotUnlockAny: foreign.cannotUnlockAny,
    unlockLuks: luks.unlockLuks,
    unlockTcrypt: tcrypt.unlockTcrypt,
    ForeignVolume: volume.ForeignVolume,
  };
}

async function openForeign(
  path: string,
  secret: Secret,
  options: VolumeOpenOptions,
  openFile: OpenContainerFile,
  which: () => 'luks' | 'veracrypt' | 'truecrypt',
): Promise<ForeignVolume> {
  const { unlockLuks, unlockTcrypt, ForeignVolume } = await foreignFormats();
  const readOnly = options.readOnly ?? false;
  const file = await openFile(path, readOnly ? 'read' : 'write');
  try {
    const identity = await file.identity();
    const fileSize = await file.size();
    const format = which();
    const unlock: ForeignUnlock =
      format === 'luks'
        ? await unlockLuks(file, secret)
        : await unlockTcrypt(file, secret, {
            flavour: format,
            ...(options.hash ? { hash: options.hash } : {}),
            pim: options.pim ?? null,
            veracryptNamed: options.type === 'veracrypt',
          });
    let protectedRange: { start: number; end: number } | undefined;
    if (options.protectHidden) {
      try {
        protectedRange = await hiddenRange(file, unlock, options, format);
      } catch (error) {
        unlock.masterKey.fill(0);
        throw error;
      }
    }
    return new ForeignVolume(file, unlock, fileSize, {
      readOnly,
      preserveTimestamps: options.preserveTimestamps ?? false,
      identity,
      ...(protectedRange ? { protectedRange } : {}),
    });
  } catch (error) {
    await file.close();
    throw error;
  }
}

/** VeraCrypt/TrueCrypt --protect-hidden: the hidden volume's data area in outer cleartext offsets. */
async function hiddenRange(
  file: Awaited<ReturnType<OpenContainerFile>>,
  outer: ForeignUnlock,
  options: VolumeOpenOptions,
  format: 'luks' | 'veracrypt' | 'truecrypt',
): Promise<{ start: number; end: number }> {
  const secret = options.protectHidden as Secret;
  if (format === 'luks') {
    throw new VaultError(
      'USAGE',
      'LUKS volumes have no hidden volume to protect',
      'open it without hidden-volume protection',
      { reason: 'luks-protect-hidden' },
    );
  }
  if (outer.kind !== 'normal') {
    throw new VaultError(
      'USAGE',
      'the first secret opens a hidden volume; protection is for mounting the outer volume',
      'give the outer volume secret first, then the hidden one',
    );
  }
  const { unlockTcrypt } = await foreignFormats();
  let hidden: ForeignUnlock;
  try {
    hidden = await unlockTcrypt(file, secret, {
      flavour: format,
      ...(options.hash ? { hash: options.hash } : {}),
      pim: options.pim ?? null,
      veracryptNamed: options.type === 'veracrypt',
      hiddenOnly: true,
    });
  } catch (error) {
    if (isVaultError(error, 'CANNOT_UNLOCK')) {
      throw new VaultError(
        'CANNOT_UNLOCK',
        'cannot unlock the hidden volume to protect it: wrong hidden password, keyfile or PIM, or no hidden volume',
        'give the hidden volume secret as the second secret, or open it without protection',
        { reason: 'protect-hidden-unlock' },
      );
    }
    throw error;
  }
  hidden.masterKey.fill(0);
  const start = hidden.dataOffset - outer.dataOffset;
  return { start, end: start + hidden.dataSize };
}
