// What every foreign volume format (LUKS, VeraCrypt, TrueCrypt) hands to the data path once unlocked:
// the master key, the sector cipher and its IV rule, where the data area is, and a description for
// `vault info`. One module per format (luks.ts, tcrypt.ts) produces it.
import type { SectorCipherSuite, SectorLayout } from '../../crypto/suites.js';
import { VaultError } from '../errors.js';

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

/** A refusal of something recognised but not supported: exit code 2 (USAGE), not "cannot unlock". */
export function unsupported(message: string, hint: string): VaultError {
  return new VaultError('USAGE', message, hint);
}

export function wipeUnlock(unlock: ForeignUnlock): void {
  unlock.masterKey.fill(0);
}
