// `vault mount --tab` and `vault dismount --tab`: the vaults of a vaulttab (vaulttab.ts), one after the
// other in the file's order (dismount: the reverse). The tab and its keyfiles must be files no other
// user can change (host/owner.ts checkTrustedFile). Each vault's failure is reported as it happens and
// the others go on; the exit status is that of the first failure, except for nofail lines.
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { VaultError } from '../container/errors.js';
import { dismountVault } from '../fuse/dismount.js';
import { readState, stateId, statusOf } from '../fuse/state.js';
import { checkTrustedFile, checkTrustedPath, resolveOwner } from '../host/owner.js';
import { mountOne } from './commands/mount.js';
import { interruptedError, wasInterrupted } from './interrupt.js';
import { AlreadyReported, note, reportError, warn } from './report.js';
import { canPrompt, parseCost, parseTries, requireFile, type SecretOptions } from './secrets.js';
import { checkVolumeOptions, parseVaulttab, selectEntries, type TabEntry } from './vaulttab.js';
import { parseVolumeTypeOptions } from './volume-options.js';

export interface TabRequest {
  tabFile: string;
  /** Names, vault files or mountpoints of lines; empty: every line but noauto ones. */
  selectors: string[];
  nonInteractive: boolean;
  /** --tries: the default for lines without tries=. */
  tries?: string;
}

/** Reads and parses a vaulttab after checking that no other user could have written it. */
export async function readVaulttab(path: string): Promise<TabEntry[]> {
  await checkTrustedFile(path, 'the vaulttab');
  const entries = parseVaulttab(await readFile(resolve(path), 'utf8'), path);
  await checkVolumeOptions(entries, path);
  return entries;
}

function label(entry: TabEntry, tabFile: string): string {
  return `${entry.name} (${tabFile} line ${entry.line}): `;
}

/** Mounts the selected lines; throws AlreadyReported with the first (not nofail) failure's exit code. */
export async function mountTab(request: TabRequest): Promise<void> {
  // Checked once, before any prompt: a bad --tries is a usage error of the whole run.
  parseTries({ ...(request.tries === undefined ? {} : { tries: request.tries }) });
  const all = await readVaulttab(request.tabFile);
  const entries = selectEntries(all, request.selectors, request.tabFile);
  if (entries.length === 0) {
    note(`${request.tabFile} lists nothing to mount${all.length > 0 ? ' (all its lines are noauto)' : ''}`);
    return;
  }
  let failure: number | null = null;
  for (const entry of entries) {
    if (wasInterrupted()) throw interruptedError();
    try {
      const mountedAt = await mountedWhere(entry.file);
      if (mountedAt !== null) {
        note(`${entry.file} is already mounted at ${mountedAt}; skipped`);
        continue;
      }
      await mountEntry(entry, request);
    } catch (error) {
      if (wasInterrupted()) throw error;
      const code = reportError(error, { prefix: label(entry, request.tabFile) });
      if (entry.options.nofail) note(`${entry.name} is nofail: the run goes on as if it had mounted`);
      else failure ??= code;
    }
  }
  if (failure !== null) throw new AlreadyReported(failure);
}

/** Where the vault `file` is mounted and working (a broken mount is left to checkMount), or null. */
async function mountedWhere(file: string): Promise<string | null> {
  const info = await stat(file).catch(() => null);
  if (!info) return null;
  const state = await readState(stateId(info.dev, info.ino));
  if (!state || statusOf(state) === 'broken') return null;
  return state.mountpoint ?? state.blockFile;
}

async function mountEntry(entry: TabEntry, request: TabRequest): Promise<void> {
  const { options } = entry;
  const tries = options.tries === undefined ? request.tries : String(options.tries);
  // A keyfile line never prompts (as crypttab); a line without one asks at a terminal.
  const secretOptions: SecretOptions = {
    nonInteractive: entry.keyfile !== null || request.nonInteractive,
    ...(entry.keyfile === null ? {} : { keyfile: [entry.keyfile] }),
    ...(tries === undefined ? {} : { tries }),
  };
  // Checks in the order a user fixes them: the file, the keyfile, then the secret (issue 18 point 4).
  await requireFile(entry.file);
  if (entry.keyfile !== null) {
    const mode = await checkTrustedFile(entry.keyfile, 'the keyfile');
    if ((mode & 0o044) !== 0) {
      warn(`the keyfile ${entry.keyfile} can be read by other users; chmod 600 it`);
    }
  }
  if (entry.keyfile === null && !canPrompt(secretOptions)) {
    throw new VaultError(
      'MISSING_SECRET',
      request.nonInteractive
        ? `${entry.file} has no keyfile in the vaulttab, and --non-interactive forbids asking for its password`
        : `${entry.file} has no keyfile in the vaulttab, and stdin is not a terminal to ask for its password on`,
      'give the line a keyfile (vault keyfile generate, then vault key add --new-keyfile), mark it noauto, or run vault mount --tab at a terminal',
    );
  }
  if (entry.mountpoint !== null) await ensureMountpoint(entry.mountpoint, options.owner);
  const result = await mountOne({
    file: entry.file,
    mountpoint: entry.mountpoint ?? undefined,
    secretOptions,
    costLevel: parseCost(options.cost === undefined ? {} : { cost: options.cost }),
    volume: await parseVolumeTypeOptions(options.volume),
    volumeType: options.volume.type,
    readOnly: options.readOnly,
    noFilesystem: false,
    preserveTimestamps: options.preserveTimestamps,
    protectHidden: false,
    hiddenKeyfiles: [],
    partition: options.partition ?? null,
    user: false,
    owner: options.owner,
    fsOptions: options.fsOptions,
    idleDismountMs: options.idleDismountMs ?? null,
  });
  for (const warning of result.warnings) warn(warning);
  process.stdout.write(`${result.state.mountpoint}\n`);
}

/**
 * A vaulttab mountpoint that does not exist yet is created (0755, as systemd does for mount units),
 * when the directory it goes in is one only root and the owner can change.
 */
async function ensureMountpoint(mountpoint: string, ownerName: string | undefined): Promise<void> {
  if (await stat(mountpoint).catch(() => null)) return;
  let parent = dirname(mountpoint);
  while (!(await stat(parent).catch(() => null)) && parent !== '/') parent = dirname(parent);
  await checkTrustedPath(parent, await resolveOwner(ownerName));
  await mkdir(mountpoint, { recursive: true, mode: 0o755 });
}

/** Dismounts the selected lines (all, noauto ones too, when none is named), last line first. */
export async function dismountTab(request: {
  tabFile: string;
  selectors: string[];
  force: boolean;
}): Promise<void> {
  const entries = selectEntries(await readVaulttab(request.tabFile), request.selectors, request.tabFile, {
    all: true,
  });
  let failure: number | null = null;
  for (const entry of [...entries].reverse()) {
    try {
      const info = await stat(entry.file).catch(() => null);
      const state = info ? await readState(stateId(info.dev, info.ino)) : null;
      if (!state) {
        if (request.selectors.length > 0) note(`${entry.file} is not mounted; skipped`);
        continue;
      }
      const result = await dismountVault(state, { force: request.force });
      if (result.pendingHolders) {
        warn(
          `${state.mountpoint ?? state.blockFile} is detached but still used by ${result.pendingHolders}; the vault is closed when they exit`,
        );
      }
      process.stdout.write(
        `dismounted ${state.file}${state.mountpoint ? ` from ${state.mountpoint}` : ''}\n`,
      );
    } catch (error) {
      failure ??= reportError(error, { prefix: label(entry, request.tabFile) });
    }
  }
  if (failure !== null) throw new AlreadyReported(failure);
}
