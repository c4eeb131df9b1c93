// The cipher suites of the vault format, keyed by the ids its header body stores (docs/FORMAT.md 3.2).
// Vault, create and the header code ask here; a new suite is one row and one test.
import { ARGON2ID_COST_LEVELS, type KdfSuite } from '../crypto/kdf.js';
import {
  AES_XTS_PLAIN64,
  type SectorCipher,
  type SectorCipherSuite,
  type SectorLayout,
} from '../crypto/suites.js';
import { CIPHER_AES_256_XTS, KDF_ARGON2ID_V1, MASTER_KEY_BYTES, SECTOR_BYTES } from './layout.js';

export interface VaultSectorCipher {
  readonly id: number;
  readonly suite: SectorCipherSuite;
  readonly keyBytes: number;
  /** XTS over 4096-byte data units; the tweak is the sector index in the data area. */
  readonly layout: SectorLayout;
}

export const VAULT_SECTOR_CIPHERS: ReadonlyMap<number, VaultSectorCipher> = new Map([
  [
    CIPHER_AES_256_XTS,
    {
      id: CIPHER_AES_256_XTS,
      suite: AES_XTS_PLAIN64,
      keyBytes: MASTER_KEY_BYTES,
      layout: { sectorBytes: SECTOR_BYTES, ivUnitBytes: SECTOR_BYTES, ivOffset: 0 },
    },
  ],
]);

export const VAULT_KDFS: ReadonlyMap<number, KdfSuite> = new Map([[KDF_ARGON2ID_V1, ARGON2ID_COST_LEVELS]]);

/** The suite a version-1 body names, or null (the body MUST then be rejected). */
export function vaultSectorCipher(id: number): VaultSectorCipher | null {
  return VAULT_SECTOR_CIPHERS.get(id) ?? null;
}

/** The data-area cipher of a vault with this master key. */
export function createVaultSectorCipher(masterKey: Uint8Array, id = CIPHER_AES_256_XTS): SectorCipher {
  const cipher = vaultSectorCipher(id);
  if (!cipher) throw new RangeError(`unknown vault cipher id ${id}`);
  return cipher.suite.create(masterKey, cipher.layout);
}
