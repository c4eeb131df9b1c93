// The public library API: embed vaults in an application without the CLI or FUSE.
// See README.md "Library" and docs/FORMAT.md.

export type { ErrorDetails, VaultErrorOptions } from '../host/errors.js';
export type { BlockDevice } from './block-device.js';
export { type CreateOptions, createVault, type HiddenOptions } from './create.js';
export { cannotUnlock, isVaultError, VaultError, type VaultErrorCode } from './errors.js';
export type { ContainerFile, OpenContainerFile } from './file.js';
export { ForeignVolume, type ForeignVolumeInfo } from './foreign-volume.js';
export {
  type FilesystemUsage,
  type MeasuredFilesystem,
  measureFilesystem,
  type ReadVolume,
  type UnmeasuredFilesystem,
} from './fs-usage.js';
export { type AddHiddenOptions, addHiddenVolume, type HiddenRoom, hiddenRoom } from './hidden.js';
export { MIN_FILE_BYTES, OVERHEAD_BYTES, SECTOR_BYTES } from './layout.js';
export {
  addKey,
  backupHeader,
  changeSecret,
  type ManageOptions,
  type RepairResult,
  removeKey,
  repairHeaders,
  restoreHeader,
} from './manage.js';
export { type ResizeOptions, type ResizeResult, resizeVault } from './resize.js';
export { Secret, type SecretInputs } from './secret.js';
export { type OpenOptions, openVault, VAULT_WARNINGS, Vault, type VaultInfo } from './vault.js';
export { openVolume, VOLUME_TYPES, type Volume, type VolumeOpenOptions, type VolumeType } from './volume.js';
