// vault mount --user: an ext4 vault mounted by a user without root (fuse2fs on the bridge's block file,
// no loop device), written, dismounted and mounted again by that user, who alone sees it in `vault list`.
// Runs as root: creates the user `vaulttest` when missing and runs the commands as it with runuser.
// /dev/fuse is made 0666 for the test's duration (Debian's default; this machine has 0600) and restored.
import { chmodSync, chownSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FAST_COST,
  lacks,
  makeTempDir,
  removeTempDirs,
  sh,
  VAULT_BIN,
  vaultOk,
  waitFor,
  withoutWeakCost,
} from './helpers.js';

const USER = 'vaulttest';
const PASSWORD = 'no root needed';
let dir = '';
let fuseMode = 0;
let uid = 0;
let gid = 0;

/** Runs a command as the test user; the password (when given) on stdin. */
function asUser(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const command = stdin === undefined ? args : ['sh', '-c', `printf '%s\\n' "$0" | "$@"`, stdin, ...args];
  return sh('runuser', ['-u', USER, '--', ...command], 120_000);
}

function vaultAsUser(args: string[], stdin?: string) {
  return asUser([process.execPath, VAULT_BIN, ...args], stdin);
}

describe.skipIf(lacks('mount', 'fuse2fs'))('vault mount --user (no root)', () => {
  beforeAll(async () => {
    if ((await sh('id', ['-u', USER])).code !== 0) await sh('useradd', ['-m', USER]);
    uid = Number((await sh('id', ['-u', USER])).stdout.trim());
    gid = Number((await sh('id', ['-g', USER])).stdout.trim());
    fuseMode = statSync('/dev/fuse').mode & 0o777;
    chmodSync('/dev/fuse', 0o666);
    dir = await makeTempDir('vault-user-');
    chmodSync(dir, 0o755);
  });
  afterAll(async () => {
    // Its own vault only (when a failed test left it mounted): `dismount --all` would also take the
    // vaults of another run of this test on the same machine, which share the user.
    await vaultAsUser(['dismount', '--force', join(dir, 'mine.vol')]);
    chmodSync('/dev/fuse', fuseMode);
    await removeTempDirs();
  });

  it('mounts, writes, dismounts and mounts again as a user without root', async () => {
    const file = join(dir, 'mine.vol');
    await vaultOk(['create', '64M', file, '--password-stdin', '--non-interactive'], `${PASSWORD}\n`);
    chownSync(file, uid, gid);
    const mountpoint = join(dir, 'mnt');
    await sh('mkdir', [mountpoint]);
    chownSync(mountpoint, uid, gid);
    const secret = ['--password-stdin', '--non-interactive', '--cost', FAST_COST];

    // Without --user the user is told to use sudo or --user.
    const refused = await vaultAsUser(['mount', file, mountpoint, ...secret], PASSWORD);
    expect(refused.code).toBe(6);
    expect(refused.stderr).toMatch(/--user/);

    // A /dev/fuse the user cannot open: NEEDS_SYSTEM with a hint for the admin, nothing changed.
    chmodSync('/dev/fuse', 0o600);
    const noFuse = await vaultAsUser(['mount', file, mountpoint, '--user', ...secret], PASSWORD);
    chmodSync('/dev/fuse', 0o666);
    expect(noFuse.code).toBe(6);
    expect(noFuse.stderr).toMatch(/\/dev\/fuse is not accessible to you/);

    const mounted = await vaultAsUser(['mount', file, mountpoint, '--user', ...secret], PASSWORD);
    expect(withoutWeakCost(mounted.stderr)).toBe('');
    expect(mounted.stdout.trim()).toBe(mountpoint);
    expect((await asUser(['sh', '-c', `echo kept > ${mountpoint}/note.txt && sync`])).code).toBe(0);
    const listed = JSON.parse((await vaultAsUser(['list', '--json'])).stdout) as Array<{
      file: string;
      state: string;
      loopDevice: string | null;
    }>;
    expect(listed.find((entry) => entry.file === file)).toMatchObject({ state: 'ok', loopDevice: null });
    const dismounted = await vaultAsUser(['dismount', mountpoint]);
    expect(dismounted.code, dismounted.stderr).toBe(0);
    expect(existsSync(join(mountpoint, 'note.txt'))).toBe(false);

    await vaultAsUser(['mount', file, mountpoint, '--user', ...secret], PASSWORD);
    expect((await asUser(['cat', `${mountpoint}/note.txt`])).stdout).toBe('kept\n');
    expect((await vaultAsUser(['dismount', file])).code).toBe(0);
    await expectNoneOfMine(file);
    expect((await sh('findmnt', ['-n', mountpoint])).stdout).toBe('');
  });

  it('a plain fusermount -u of the mountpoint is noticed: the daemon takes the rest down (18.11)', async () => {
    const file = join(dir, 'mine.vol');
    const mountpoint = join(dir, 'mnt');
    const secret = ['--password-stdin', '--non-interactive', '--cost', FAST_COST];
    const mounted = await vaultAsUser(['mount', file, mountpoint, '--user', ...secret], PASSWORD);
    expect(mounted.code, mounted.stderr).toBe(0);
    const unmounted = await asUser(['fusermount', '-u', mountpoint]);
    expect(unmounted.code, unmounted.stderr).toBe(0);
    await waitFor(async () => !(await listsMine(file)), 'the daemon to take its mount down', 20_000);
    expect((await sh('findmnt', ['-n', mountpoint])).stdout).toBe('');
    // Mounting again just works.
    const again = await vaultAsUser(['mount', file, mountpoint, '--user', ...secret], PASSWORD);
    expect(again.code, again.stderr).toBe(0);
    expect((await asUser(['cat', `${mountpoint}/note.txt`])).stdout).toBe('kept\n');
    expect((await vaultAsUser(['dismount', mountpoint])).code).toBe(0);
    await expectNoneOfMine(file);
  });
});

/** Whether the user's `vault list` shows `file`. */
async function listsMine(file: string): Promise<boolean> {
  const listed = await vaultAsUser(['list', '--json']);
  // Root's vaults (another test run's) are not the user's to see: exit 6 then, and none of the user's.
  if (listed.code === 6) return false;
  return (JSON.parse(listed.stdout) as Array<{ file: string }>).some((entry) => entry.file === file);
}

/** The user's `vault list` is empty: `[]`, or (while root has vaults mounted) exit 6, needs root. */
async function expectNoneOfMine(file: string): Promise<void> {
  const listed = await vaultAsUser(['list', '--json']);
  if (listed.code === 6) expect(listed.stderr).toMatch(/mounted by root: listing (it|them) needs root/);
  else expect(JSON.parse(listed.stdout)).toEqual([]);
  expect(await listsMine(file)).toBe(false);
}
