// The container layer's errors: the one VaultError type (src/host/errors.ts) and the unlock failure.
import { VaultError } from '../host/errors.js';

export { isVaultError, VaultError, type VaultErrorCode } from '../host/errors.js';

/** The single message for every failed unlock: a wrong secret and a non-vault must look the same. */
export function cannotUnlock(): VaultError {
  return new VaultError(
    'CANNOT_UNLOCK',
    'cannot unlock the vault: wrong password, keyfile or cost level, or not a vault',
    'check the password, every keyfile and the cost level the vault was created with',
    { reason: 'cannot-unlock' },
  );
}
