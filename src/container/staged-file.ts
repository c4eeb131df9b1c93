// New files are never written in place: create, import, export and header backup build them under a
// temporary name next to the target (same filesystem), then publish them in one step, so a failed or
// interrupted command leaves either the old target or the complete new one, never a partial file.
// Also the checks every new file and every long operation share: target, free space, Ctrl-C.
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { link, lstat, readdir, rename, statfs, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { processAlive } from '../host/process.js';
import { VaultError } from './errors.js';
import { fileError } from './file.js';

export interface StagedFile {
  /** The file being built: hidden (.name.vault-tmp-<pid>-<random>), in the target's directory. */
  readonly temporary: string;
  readonly target: string;
  /**
   * Moves it into place: with `force` by rename (atomically replacing the target), otherwise by link,
   * which fails if the target appeared meanwhile (EXISTS), so nothing is ever overwritten unasked.
   */
  publish(): Promise<void>;
  /** Removes the temporary file; never throws. */
  discard(): Promise<void>;
}

export interface StageOptions {
  /** Replace an existing regular file (never a directory, device, fifo, socket or symlink). */
  force: boolean;
  /** What the new file will take, checked against the free space (the replaced file's size counts). */
  space?: { bytes: number; what: string };
  /** The hint when the target exists and `force` is not allowed (default: "--force to replace it"). */
  existsHint?: string;
}

/**
 * Checks the target and the free space, removes temporaries that killed runs left for the same target,
 * and names the temporary file. The caller creates it (its own way: O_EXCL, mode 0600, ...).
 */
export async function stageFile(target: string, options: StageOptions): Promise<StagedFile> {
  const existing = await checkNewFile(target, options.force, options.existsHint);
  if (options.space) {
    await checkFreeSpace(dirname(target), options.space.bytes, existing?.size ?? 0, options.space.what);
  }
  await removeAbandonedTemporaries(target);
  const temporary = join(
    dirname(target),
    `.${basename(target)}.vault-tmp-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
  return {
    temporary,
    target,
    async publish() {
      try {
        if (options.force) {
          await rename(temporary, target);
          return;
        }
        await link(temporary, target);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw exists(target, options.existsHint);
        throw fileError(error, target);
      }
      await unlink(temporary).catch(() => {});
    },
    async discard() {
      await unlink(temporary).catch(() => {});
    },
  };
}

/**
 * A command killed with SIGKILL cannot remove its temporary file. The next run for the same target
 * removes those whose process is gone.
 */
async function removeAbandonedTemporaries(target: string): Promise<void> {
  const prefix = `.${basename(target)}.vault-tmp-`;
  const names = await readdir(dirname(target)).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || processAlive(pid)) continue;
    await unlink(join(dirname(target), name)).catch(() => {});
  }
}

/**
 * The path of a file about to be created: not a directory, and not an existing file unless `force`.
 * Returns what is there now (null when nothing).
 */
export async function checkNewFile(path: string, force: boolean, existsHint?: string): Promise<Stats | null> {
  // lstat: a symlink is not followed (its target is not ours to replace), and a device node, fifo or
  // socket is never replaced, even with --force: `--force /dev/null` must not turn it into a file.
  const existing = await lstat(path).catch(() => null);
  if (existing?.isDirectory())
    throw new VaultError('USAGE', `is a directory: ${path}`, 'name a file to create');
  if (existing && !existing.isFile()) {
    throw new VaultError(
      'USAGE',
      `not a regular file: ${path} (${fileKind(existing)})`,
      'name a new file or an existing regular file; vault never replaces devices, fifos, sockets or symlinks',
    );
  }
  if (existing && !force) throw exists(path, existsHint);
  return existing;
}

function exists(path: string, hint?: string): VaultError {
  // The default hint is the CLI's (reason 'exists': "--force to replace it"); a caller's hint stays.
  return new VaultError('EXISTS', `file exists: ${path}`, hint ?? 'choose another name', {
    reason: hint ? 'exists-never-replaced' : 'exists',
  });
}

function fileKind(info: Stats): string {
  if (info.isSymbolicLink()) return 'a symbolic link';
  if (info.isBlockDevice()) return 'a block device';
  if (info.isCharacterDevice()) return 'a character device';
  if (info.isFIFO()) return 'a fifo';
  // Stryker disable next-line ConditionalExpression: equivalent, lstat knows no other kind, so the line below is never reached
  if (info.isSocket()) return 'a socket';
  // Stryker disable next-line StringLiteral: unreachable, as above
  return 'not a file';
}

/** IO "not enough free space" when `dir`'s filesystem cannot take `neededBytes` more (less what is replaced). */
export async function checkFreeSpace(
  dir: string,
  neededBytes: number,
  replacedBytes: number,
  what: string,
): Promise<void> {
  const fs = await statfs(dir).catch((error: unknown) => {
    throw fileError(error, dir);
  });
  const free = fs.bavail * fs.bsize + replacedBytes;
  if (neededBytes > free) {
    const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
    throw new VaultError(
      'IO',
      `not enough free space: ${what} needs ${gib(neededBytes)}, ${dir} has ${gib(free)} free`,
      'choose a smaller size or another disk',
    );
  }
}

/** INTERRUPTED once Ctrl-C/SIGTERM aborted `signal`, saying what became of the work (`outcome`). */
export function abortIfAsked(signal: AbortSignal | undefined, outcome: string): void {
  if (signal?.aborted) {
    throw new VaultError('INTERRUPTED', `interrupted; ${outcome}`, 'run the command again');
  }
}
