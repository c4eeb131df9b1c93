// What every foreign volume format (LUKS, VeraCrypt, TrueCrypt) hands to the data path once unlocked:
// the master key, the sector cipher and its IV rule, where the data area is, and a description for
// `vault info`. One module per format (luks.ts, tcrypt.ts) produces it.

import { prfAvailable } from '../../crypto/foreign-kdf.js';
import type { SectorCipherSuite, SectorLayout } from '../../crypto/suites.js';
import { VaultError } from '../errors.js';

export type VolumeType = 'vault' | 'luks' | 'veracrypt' | 'truecrypt';

export type ForeignFormat = 'luks1' | 'luks2' | 'veracrypt' | 'truecrypt';

export type KdfDescription =
  | { type: 'pbkdf2'; hash: string; iterations: number; pim?: number }
  | { type: 'argon2i' | 'argon2id'; memoryKiB: number; iterations: number; parallelism: number };

export interface ForeignUnlock {
  format: ForeignFormat;
  /** Header version as the format numbers it (LUKS 1/2, VeraCrypt/TrueCrypt header version). */
  version: number;
  /** Caller wipes (the volume does on close). */
  masterKey: Buffer;
  suite: SectorCipherSuite;
  layout: SectorLayout;
  /** Byte offset of the data area in the file, and its size. */
  dataOffset: number;
  dataSize: number;
  kdf: KdfDescription;
  /** 'hidden' when the secret opened a VeraCrypt/TrueCrypt hidden volume. */
  kind: 'normal' | 'hidden';
  /** Which header opened: 'primary', 'secondary' (LUKS2), 'backup' (VeraCrypt/TrueCrypt). */
  header: string;
  /** LUKS keyslot that opened, or null. */
  keyslot: number | null;
  /** Header copies and their state, for `vault info` (LUKS2: both copies). */
  notes: string[];
}

/**
 * Detection tries VeraCrypt's Argon2id only up to this PIM (1 GiB, 13 passes: where its formula stops
 * growing memory); above it every pass costs about a second, so a larger PIM needs --hash argon2.
 */
export const ARGON2_DETECT_MAX_PIM = 31;

/** A refusal of something recognised but not supported: exit code 2 (USAGE), not "cannot unlock". */
export function unsupported(message: string, hint: string): VaultError {
  return new VaultError('USAGE', message, hint);
}

export function wipeUnlock(unlock: ForeignUnlock): void {
  unlock.masterKey.fill(0);
}

/** What vault opens, for the hint of a failed unlock. */
const OPENED =
  'its own vaults, LUKS1/LUKS2 (aes-xts-plain64, aes-cbc-essiv:sha256; PBKDF2, Argon2i, Argon2id) and ' +
  'VeraCrypt/TrueCrypt volumes encrypted with AES (PBKDF2 with SHA-512, SHA-256, BLAKE2s, Whirlpool, ' +
  "RIPEMD-160, SHA-1, or VeraCrypt's Argon2id; not Serpent, Twofish, Camellia, Kuznyechik or cascades)";

/**
 * Every failed unlock of a foreign attempt looks the same, as for vaults (the formats are deniable).
 * `note` says why a format was left out (a password too long for it), after the message.
 */
export function cannotUnlockAny(tried: readonly VolumeType[], note?: string): VaultError {
  const foreign = tried.includes('veracrypt') || tried.includes('truecrypt');
  const whirlpool =
    foreign && !prfAvailable('whirlpool')
      ? '; Whirlpool was not tried (this Node.js lacks it and the native addon is not built: run npm ci, or set NODE_OPTIONS=--openssl-legacy-provider)'
      : '';
  const names = tried.map((type) =>
    type === 'luks'
      ? 'LUKS'
      : type === 'veracrypt'
        ? 'VeraCrypt'
        : type === 'truecrypt'
          ? 'TrueCrypt'
          : 'vault',
  );
  return new VaultError(
    'CANNOT_UNLOCK',
    `cannot unlock the volume as ${names.join(', ')}: wrong password, keyfile, cost level or PIM, or not such a volume${note ? `; ${note}` : ''}`,
    `check the password and keyfiles; vault opens ${OPENED}; the volume type, hash and PIM narrow the search (VeraCrypt's Argon2id is tried only when the type is VeraCrypt or a PIM is given, and above PIM ${ARGON2_DETECT_MAX_PIM} only with the argon2 hash)${whirlpool}`,
    {
      reason: 'foreign-cannot-unlock',
      details: { opened: OPENED, maxPim: ARGON2_DETECT_MAX_PIM, whirlpool },
    },
  );
}
