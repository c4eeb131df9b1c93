// The two system calls of a mount without a program each (native/host.c, in the vault_xts addon):
// attaching a loop device and mount(2) of a kernel filesystem. Starting losetup, blkid and mount(8)
// from the daemon cost 60-80 ms of a mount's ~100 ms of its own work. Each answers null when the
// addon is not built or the call failed: loop.ts and mounts.ts then run losetup or mount(8), which
// also say why in their own words.
import { createRequire } from 'node:module';

interface HostAddon {
  attachLoop(file: string, options: number): Promise<number>;
  mountFilesystem(source: string, target: string, type: string, flags: number, data: string): Promise<number>;
}

let addon: HostAddon | null | undefined;

function host(): HostAddon | null {
  if (addon !== undefined) return addon;
  try {
    // build/ sits two levels above both src/host and dist/host (the addon crypto/native.ts loads too).
    const loaded = createRequire(import.meta.url)('../../build/Release/vault_xts.node') as Partial<HostAddon>;
    addon =
      typeof loaded.attachLoop === 'function' && typeof loaded.mountFilesystem === 'function'
        ? (loaded as HostAddon)
        : null;
  } catch {
    addon = null;
  }
  return addon;
}

/** LOOP_CTL_GET_FREE + LOOP_CONFIGURE: the device path, or null (then run losetup). */
export async function attachLoopDirect(
  file: string,
  options: { readOnly: boolean; directIo: boolean; partScan?: boolean },
): Promise<string | null> {
  const native = host();
  if (!native) return null;
  const flags = (options.readOnly ? 1 : 0) | (options.directIo ? 2 : 0) | (options.partScan ? 4 : 0);
  const index = await native.attachLoop(file, flags).catch(() => -1);
  return index >= 0 ? `/dev/loop${index}` : null;
}

// mount(2) flags (linux/mount.h), as mount(8) maps its option names (libmount's Linux option map).
const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  SYNCHRONOUS: 0x10,
  MANDLOCK: 0x40,
  DIRSYNC: 0x80,
  NOSYMFOLLOW: 0x100,
  NOATIME: 0x400,
  NODIRATIME: 0x800,
  SILENT: 0x8000,
  RELATIME: 0x200000,
  I_VERSION: 0x800000,
  STRICTATIME: 0x1000000,
  LAZYTIME: 0x2000000,
} as const;

/** Option name -> [flag, set (true) or clear (false)]; a Map, so no inherited name is an option. */
const FLAG_OPTIONS = new Map<string, [number, boolean]>([
  ['ro', [MS.RDONLY, true]],
  ['rw', [MS.RDONLY, false]],
  ['nosuid', [MS.NOSUID, true]],
  ['suid', [MS.NOSUID, false]],
  ['nodev', [MS.NODEV, true]],
  ['dev', [MS.NODEV, false]],
  ['noexec', [MS.NOEXEC, true]],
  ['exec', [MS.NOEXEC, false]],
  ['sync', [MS.SYNCHRONOUS, true]],
  ['async', [MS.SYNCHRONOUS, false]],
  ['dirsync', [MS.DIRSYNC, true]],
  ['mand', [MS.MANDLOCK, true]],
  ['nomand', [MS.MANDLOCK, false]],
  ['nosymfollow', [MS.NOSYMFOLLOW, true]],
  ['symfollow', [MS.NOSYMFOLLOW, false]],
  ['noatime', [MS.NOATIME, true]],
  ['atime', [MS.NOATIME, false]],
  ['nodiratime', [MS.NODIRATIME, true]],
  ['diratime', [MS.NODIRATIME, false]],
  ['silent', [MS.SILENT, true]],
  ['loud', [MS.SILENT, false]],
  ['relatime', [MS.RELATIME, true]],
  ['norelatime', [MS.RELATIME, false]],
  ['iversion', [MS.I_VERSION, true]],
  ['noiversion', [MS.I_VERSION, false]],
  ['strictatime', [MS.STRICTATIME, true]],
  ['nostrictatime', [MS.STRICTATIME, false]],
  ['lazytime', [MS.LAZYTIME, true]],
  ['nolazytime', [MS.LAZYTIME, false]],
]);

/**
 * Splits a mount(8) option list into mount(2) flags and the filesystem's data string, as mount(8)
 * does; null for a list with an option only mount(8) knows how to treat (fstab and helper options
 * such as noauto, user, x-*, or anything with quotes), which then goes to mount(8) itself.
 */
export function splitMountOptions(list: string): { flags: number; data: string } | null {
  let flags = 0;
  const data: string[] = [];
  for (const option of list.split(',')) {
    if (option === '') continue;
    const flag = FLAG_OPTIONS.get(option);
    if (flag) {
      flags = flag[1] ? flags | flag[0] : flags & ~flag[0];
      continue;
    }
    const name = option.split('=')[0] ?? '';
    if (
      /^(x-|comment$|defaults$|auto$|noauto$|nofail$|_netdev$|users?$|owner$|group$|loop$|helper$)/.test(name)
    ) {
      return null;
    }
    if (!/^[A-Za-z0-9_.:/+=-]+$/.test(option)) return null;
    data.push(option);
  }
  return { flags, data: data.join(',') };
}

/** mount(2) of a kernel filesystem; false when the addon is missing or the kernel refused. */
export async function mountDirect(
  source: string,
  target: string,
  type: string,
  list: string,
): Promise<boolean> {
  const native = host();
  const split = splitMountOptions(list);
  if (!native || !split) return false;
  const result = await native.mountFilesystem(source, target, type, split.flags, split.data).catch(() => -1);
  return result === 0;
}
