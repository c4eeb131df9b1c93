// Adding a hidden volume to an existing vault (docs/FORMAT.md 8, docs/CLI.md "Hidden volumes"): the
// outer secret opens the vault, its exFAT/FAT filesystem tells how much of the tail is free, and the
// hidden header pair is written where random bytes were. The outer header and data are never written.
import { DEFAULT_COST_LEVEL } from '../crypto/kdf.js';
import { HIDDEN_OUTER_TYPES } from '../host/filesystems.js';
import { buildHidden, checkHiddenSize, type HiddenOptions } from './create.js';
import { isVaultError, VaultError } from './errors.js';
import { type ContainerFile, fileError, type OpenContainerFile, openContainerFile } from './file.js';
import { type FilesystemUsage, measureFilesystem } from './fs-usage.js';
import {
  type HeaderState,
  layoutIncomplete,
  sealHeaderPair,
  unlockHeaders,
  wipeHeaderState,
  writeHeaderPair,
} from './header-pair.js';
import { MIN_DATA_BYTES, SECTOR_BYTES } from './layout.js';
import type { Secret } from './secret.js';
import { abortIfAsked } from './staged-file.js';
import { Vault } from './vault.js';

export interface AddHiddenOptions {
  /** A secret of the existing vault (its outer volume). */
  outerSecret: Secret;
  /** Cost level of the outer secret; the hidden secret gets the same unless `hidden.costLevel` is set. */
  costLevel?: number;
  /**
   * The hidden volume; its secret may be a reader, called once the outer secret has unlocked and the
   * room was measured (a prompt then comes after every check); what it returns is wiped here.
   */
  hidden: Omit<HiddenOptions, 'secret'> & { secret: Secret | (() => Promise<Secret>) };
  signal?: AbortSignal;
  openFile?: OpenContainerFile;
}

export interface HiddenRoom {
  /** The outer filesystem and how far into the outer volume it reaches. */
  usage: FilesystemUsage;
  /** Size of the outer volume in bytes. */
  outerDataSize: number;
  /** Kept free between the outer filesystem's last used byte and the hidden volume. */
  marginBytes: number;
  /** The largest hidden volume that fits (0 when none does). */
  maxHiddenBytes: number;
}

/** At least this much stays free after the outer filesystem's last used byte, and at least 1%. */
export const MIN_MARGIN_BYTES = 2 ** 20;
/** How many sectors of the future hidden area are checked for never having been written. */
const SAMPLED_SECTORS = 256;

/**
 * How large a hidden volume the outer filesystem leaves room for: everything after its last used
 * byte, less a margin of 1% of the outer volume (at least 1 MiB), in whole sectors.
 */
export function hiddenRoom(outerDataSize: number, usage: FilesystemUsage): HiddenRoom {
  const marginBytes = Math.max(MIN_MARGIN_BYTES, roundUpToSector(Math.ceil(outerDataSize / 100)));
  const free = outerDataSize - roundUpToSector(usage.usedEnd) - marginBytes;
  const fits = Math.min(roundDownToSector(free), outerDataSize - MIN_DATA_BYTES);
  return { usage, outerDataSize, marginBytes, maxHiddenBytes: fits >= MIN_DATA_BYTES ? fits : 0 };
}

/**
 * `vault create --hidden <size> <file>`: adds a hidden volume of `hidden.dataSize` bytes to the tail
 * of an existing vault whose outer volume holds exFAT or FAT, and formats it with `hidden.format`.
 * Replaces a hidden volume already there (the outer secret cannot see one). Steps: unlock with the
 * outer secret; measure the outer filesystem (read-only); refuse when the hidden area would overlap
 * it or was never written (a --quick vault); write and sync the hidden header pair; format.
 * Interrupted after the header pair: the hidden secret opens a half-formatted volume; the outer
 * volume is as it was. Running it again replaces the hidden volume.
 */
export async function addHiddenVolume(path: string, options: AddHiddenOptions): Promise<HiddenRoom> {
  const costLevel = options.costLevel ?? DEFAULT_COST_LEVEL;
  const file = await (options.openFile ?? openContainerFile)(path, 'write');
  let outer: HeaderState | null = null;
  let hidden: HeaderState | null = null;
  try {
    outer = await unlockHeaders(file, options.outerSecret, costLevel);
    checkOuter(outer);
    const identity = await file.identity();
    const settings = { costLevel, preserveTimestamps: false, identity, keepFileOpen: true };
    const { dataSize } = options.hidden;
    checkHiddenSize(outer.dataSize, dataSize);
    const room = await measureRoom(new Vault(file, outer, { ...settings, readOnly: true }));
    if (dataSize > room.maxHiddenBytes) throw tooLarge(room, dataSize);
    const hiddenStart = outer.dataOffset + outer.dataSize - dataSize;
    await refuseNeverWritten(file, hiddenStart, dataSize);
    abortIfAsked(options.signal, 'nothing was changed');

    const secret = options.hidden.secret;
    if (typeof secret === 'function') {
      const read = await secret();
      try {
        hidden = await buildHidden(
          outer,
          { ...options.hidden, secret: read },
          costLevel,
          options.outerSecret,
        );
      } finally {
        read.wipe();
      }
    } else {
      hidden = await buildHidden(outer, { ...options.hidden, secret }, costLevel, options.outerSecret);
    }
    abortIfAsked(options.signal, 'nothing was changed');
    await writeHeaderPair(file, hidden, sealHeaderPair(hidden, hidden.tables, 1, 1));
    const hiddenVault = new Vault(file, hidden, { ...settings, readOnly: false });
    try {
      if (options.hidden.format) await options.hidden.format(hiddenVault);
      abortIfAsked(options.signal, HALF_DONE);
    } catch (error) {
      throw halfDone(error, path, options.signal);
    } finally {
      await hiddenVault.close();
    }
    return room;
  } catch (error) {
    if (isVaultError(error)) throw error;
    throw fileError(error, path);
  } finally {
    if (outer) wipeHeaderState(outer);
    if (hidden) wipeHeaderState(hidden);
    await file.close().catch(() => {});
  }
}

const HALF_DONE =
  'the hidden header was written, but its volume may be half-formatted; the outer volume is unchanged';

/** A failure once the hidden header is on disk: say what is left, and that a rerun replaces it. */
function halfDone(error: unknown, path: string, signal: AbortSignal | undefined): VaultError {
  const again = 'run the same command again: it replaces the half-made hidden volume';
  if (signal?.aborted) return new VaultError('INTERRUPTED', `interrupted; ${HALF_DONE}`, again);
  const cause = isVaultError(error) ? error : fileError(error, path);
  return new VaultError(cause.code, `${cause.message}; ${HALF_DONE}`, again, { cause });
}

function checkOuter(outer: HeaderState): void {
  if (outer.kind === 'hidden') {
    throw new VaultError(
      'USAGE',
      'this secret opens a hidden volume; a hidden volume is added with the outer volume secret',
      'give the secret of the outer volume first, then the new hidden secret',
    );
  }
  if (layoutIncomplete(outer)) {
    throw new VaultError(
      'USAGE',
      'the vault file is longer than its volume: an earlier resize was interrupted',
      'resize it again to the size you wanted, then add the hidden volume',
      { reason: 'hidden-after-interrupted-resize' },
    );
  }
  if (outer.copies.some((copy) => copy.state !== 'ok')) {
    throw new VaultError(
      'USAGE',
      'one of the vault header copies is damaged or out of date',
      'repair the vault first, then add the hidden volume',
      { reason: 'hidden-needs-repair' },
    );
  }
}

/** Measures the outer filesystem through a read-only handle, which it closes (wiping its keys). */
async function measureRoom(outerVault: Vault): Promise<HiddenRoom> {
  try {
    const found = await measureFilesystem(async (offset, length) => {
      const plain = Buffer.alloc(length);
      await outerVault.readAt(plain, offset);
      return plain;
    }, outerVault.size);
    if (found.filesystem === 'other') throw unmeasurable(found.name);
    return hiddenRoom(outerVault.size, found);
  } finally {
    await outerVault.close();
  }
}

function unmeasurable(name: string | null): VaultError {
  const why =
    name === null
      ? `the outer volume holds no ${HIDDEN_OUTER_TYPES.join(' or ')} filesystem`
      : `the outer volume holds ${name}, which keeps metadata (${name.startsWith('ext') ? 'backup superblocks, group descriptors, inode tables' : 'its own structures'}) all over the volume`;
  return new VaultError(
    'USAGE',
    `${why}: vault cannot tell which part of it is free, so a hidden volume in its tail would be overwritten`,
    `a hidden volume can be added only when the outer volume is ${HIDDEN_OUTER_TYPES.join(' or ')}; otherwise make a new ` +
      'vault with one and copy the files over',
    { reason: 'hidden-outer-unmeasurable', details: { types: HIDDEN_OUTER_TYPES.join(' or ') } },
  );
}

function tooLarge(room: HiddenRoom, dataSize: number): VaultError {
  const used = `the outer ${room.usage.filesystem} filesystem uses ${mib(room.usage.usedEnd)} of its ${mib(room.outerDataSize)} volume`;
  if (room.maxHiddenBytes === 0) {
    return new VaultError(
      'USAGE',
      `no room for a hidden volume: ${used}`,
      'delete files from the outer volume (or grow the vault), then try again',
      { reason: 'hidden-no-room' },
    );
  }
  const largest =
    room.maxHiddenBytes >= 2 ** 20
      ? {
          text: mib(room.maxHiddenBytes, Math.floor),
          option: `${Math.floor(room.maxHiddenBytes / 2 ** 20)}M`,
        }
      : { text: `${room.maxHiddenBytes / 1024} KiB`, option: `${room.maxHiddenBytes / 1024}K` };
  return new VaultError(
    'USAGE',
    `a hidden volume of ${mib(dataSize)} does not fit: ${used}, and ${mib(room.marginBytes)} stay free after it`,
    `the largest hidden volume that fits is ${largest.text}`,
    { reason: 'hidden-too-large', details: { largest: largest.text, option: largest.option } },
  );
}

/**
 * A vault made with --quick has never-written (zero) sectors where the outer filesystem never wrote:
 * a hidden volume there would be the only ciphertext in the tail. Checks a sample of the area.
 */
async function refuseNeverWritten(file: ContainerFile, start: number, length: number): Promise<void> {
  const sectors = length / SECTOR_BYTES;
  const samples = Math.min(SAMPLED_SECTORS, sectors);
  const cipher = Buffer.alloc(SECTOR_BYTES);
  for (let index = 0; index < samples; index++) {
    const sector = samples === 1 ? 0 : Math.floor((index * (sectors - 1)) / (samples - 1));
    await file.read(cipher, start + sector * SECTOR_BYTES);
    if (cipher.every((byte) => byte === 0)) {
      throw new VaultError(
        'USAGE',
        'the tail of this vault was never written (it was created without its fill): a hidden volume there would stand out',
        'make a new vault with a hidden volume and copy the files over',
        { reason: 'hidden-in-unfilled' },
      );
    }
  }
}

/** "12.1 MiB": one decimal, none when whole (as the CLI prints sizes). */
function mib(bytes: number, round: (value: number) => number = Math.round): string {
  const tenths = round((bytes / 2 ** 20) * 10);
  return `${tenths % 10 === 0 ? tenths / 10 : (tenths / 10).toFixed(1)} MiB`;
}

function roundUpToSector(bytes: number): number {
  return Math.ceil(bytes / SECTOR_BYTES) * SECTOR_BYTES;
}

function roundDownToSector(bytes: number): number {
  return Math.floor(bytes / SECTOR_BYTES) * SECTOR_BYTES;
}
