// vault mount / dismount / list as a user runs them: real bin/vault, FUSE, loop devices and ext4, as root.
// Each test checks what a user would: file contents after remounting, exit codes, error text, and that
// nothing (mount, loop device, daemon, state directory, created mountpoint) is left behind.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  FAST_COST,
  forceCleanup,
  isMounted,
  lacks,
  leftovers,
  listedVault,
  makeTempDir,
  mounts,
  ROOT,
  RUN_DIR,
  removeTempDirs,
  sh,
  skipTest,
  VAULT_BIN,
  vault,
  vaultDaemons,
  waitFor,
} from './helpers.js';

const PASSWORD = 'correct horse battery staple';
const secretArgs = ['--password-stdin', '--non-interactive', '--cost', FAST_COST];

let dir = '';
const extraPaths: string[] = [];

async function createVault(name: string, size = '64M'): Promise<string> {
  const file = join(dir, name);
  const result = await vault(['create', size, file, ...secretArgs], { stdin: `${PASSWORD}\n` });
  expect(result.code, result.stderr).toBe(0);
  return file;
}

function makeDir(name: string): string {
  const path = join(dir, name);
  mkdirSync(path);
  return path;
}

async function mount(file: string, args: string[] = [], password = PASSWORD) {
  return vault(['mount', file, ...args, ...secretArgs], { stdin: `${password}\n` });
}

async function expectMounted(file: string, args: string[] = []): Promise<string> {
  const result = await mount(file, args);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return result.stdout.trim();
}

async function dismount(target: string, args: string[] = []) {
  return vault(['dismount', target, ...args]);
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** The directory entry too: fsync of the directory, as careful programs do. */
function syncfs(path: string): void {
  const fd = openSync(path, 'r');
  fsyncSync(fd);
  closeSync(fd);
}

/** The vault files `vault list` shows (all of this user's vaults), or undefined when it failed. */
async function listed(): Promise<string[] | undefined> {
  const result = await vault(['list', '--json']);
  if (result.code !== 0) return undefined;
  return (JSON.parse(result.stdout) as Array<{ file: string }>).map((entry) => entry.file);
}

/** An mkfs process working on a file under `dir`. */
function mkfsRunningOn(dir: string): boolean {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .some((pid) => {
      try {
        const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        return command.includes('mkfs') && command.includes(dir);
      } catch {
        return false;
      }
    });
}

function expectClean(): void {
  expect(leftovers(dir, extraPaths)).toEqual([]);
}

/**
 * Mount daemons of this checkout started since `before` and still running (a failed `vault mount` must
 * not leave the one it prestarted). Other checkouts' daemons on a shared machine come and go meanwhile.
 */
function newDaemons(before: readonly number[]): number[] {
  return daemonPids().filter((pid) => !before.includes(pid));
}

function daemonPids(): number[] {
  const daemon = join(ROOT, 'dist/fuse/daemon.js');
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(daemon);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe.skipIf(lacks('mount'))('vault mount / dismount / list', () => {
  afterEach(async () => {
    const cleaned = await forceCleanup(dir);
    for (const path of extraPaths.splice(0)) if (existsSync(path)) await sh('rmdir', [path]);
    expect(cleaned, 'a test left these behind').toEqual([]);
  });

  afterAll(async () => {
    await removeTempDirs();
  });

  it('keeps files across dismount and remount, and the container holds none of the cleartext', async () => {
    dir = await makeTempDir();
    const file = await createVault('secret.vol');
    const mountpoint = makeDir('mnt');
    expect(await expectMounted(file, [mountpoint])).toBe(mountpoint);
    expect(isMounted(mountpoint)).toBe(true);

    const marker = `CLEARTEXT-MARKER-${randomBytes(8).toString('hex')}`;
    const big = Buffer.from(marker.repeat(Math.ceil((3 << 20) / marker.length)));
    writeFileSync(join(mountpoint, 'notes.txt'), `${marker}\n`);
    mkdirSync(join(mountpoint, 'sub'));
    writeFileSync(join(mountpoint, 'sub', 'big.bin'), big);

    const listed = JSON.parse((await vault(['list', '--json'])).stdout) as Array<Record<string, unknown>>;
    expect(listed).toContainEqual(
      expect.objectContaining({ file, mountpoint, readOnly: false, state: 'ok', pid: expect.any(Number) }),
    );
    const mtimeBefore = statSync(file).mtimeMs;

    const result = await dismount(mountpoint);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expectClean();
    expect(readFileSync(file).includes(marker)).toBe(false);
    expect(statSync(file).mtimeMs).toBeGreaterThan(mtimeBefore - 1);

    // Again, at the default mountpoint this time (created, printed, removed at dismount).
    const mediaPoint = await expectMounted(file);
    extraPaths.push(mediaPoint);
    expect(mediaPoint).toMatch(/^\/media\/vault\/secret(-\d+)?$/);
    expect(readFileSync(join(mediaPoint, 'notes.txt'), 'utf8')).toBe(`${marker}\n`);
    expect(readFileSync(join(mediaPoint, 'sub', 'big.bin')).equals(big)).toBe(true);
    expect((await dismount(file)).code).toBe(0);
    expectClean();
    expect(existsSync(mediaPoint)).toBe(false);
  });

  it("keeps a vault's log across its mounts, but not a log older than the file (another file's, by device and inode)", async () => {
    dir = await makeTempDir();
    const file = await createVault('logged.vol');
    const mountpoint = makeDir('mnt');
    const log = `${RUN_DIR}/log/${statSync(file).dev}-${statSync(file).ino}.log`;
    const mounts = () => readFileSync(log, 'utf8').match(/^.*mounting .*$/gm) ?? [];
    // What a deleted file with the same device and inode left: written before this file existed.
    writeFileSync(log, 'an older vault: staying mounted\n');
    expect(statSync(file).birthtimeMs, 'the filesystem keeps creation times').toBeGreaterThan(0);
    const before = new Date(statSync(file).birthtimeMs - 60_000);
    await sh('touch', ['-d', before.toISOString(), log]);
    for (let round = 0; round < 2; round++) {
      await expectMounted(file, [mountpoint]);
      expect((await dismount(mountpoint)).code).toBe(0);
    }
    expect(readFileSync(log, 'utf8')).not.toContain('an older vault');
    expect(mounts()).toHaveLength(2);
    expectClean();
  });

  it('changes the container mtime when content changes, unless --preserve-timestamps', async () => {
    dir = await makeTempDir();
    const file = await createVault('times.vol');
    const mountpoint = makeDir('mnt');
    const old = new Date('2020-01-01T00:00:00Z');
    await sh('touch', ['-d', old.toISOString(), file]);

    await expectMounted(file, [mountpoint, '--preserve-timestamps']);
    writeFileSync(join(mountpoint, 'a.txt'), 'one');
    expect((await dismount(mountpoint)).code).toBe(0);
    expect(statSync(file).mtimeMs).toBe(old.getTime());

    await expectMounted(file, [mountpoint]);
    writeFileSync(join(mountpoint, 'b.txt'), 'two');
    expect((await dismount(mountpoint)).code).toBe(0);
    expect(statSync(file).mtimeMs).toBeGreaterThan(old.getTime());
    expectClean();
  });

  it('--read-only refuses writes and leaves the container byte-identical', async () => {
    dir = await makeTempDir();
    const file = await createVault('ro.vol');
    const mountpoint = makeDir('mnt');
    await expectMounted(file, [mountpoint]);
    writeFileSync(join(mountpoint, 'kept.txt'), 'kept');
    expect((await dismount(mountpoint)).code).toBe(0);
    const hash = sha256(file);
    const mtime = statSync(file).mtimeMs;

    await expectMounted(file, [mountpoint, '--read-only']);
    expect(readFileSync(join(mountpoint, 'kept.txt'), 'utf8')).toBe('kept');
    expect(() => writeFileSync(join(mountpoint, 'new.txt'), 'no')).toThrow(/EROFS|read-only/);
    const listed = JSON.parse((await vault(['list', '--json'])).stdout) as Array<Record<string, unknown>>;
    expect(listed).toContainEqual(expect.objectContaining({ file, readOnly: true }));
    expect((await dismount(mountpoint)).code).toBe(0);
    expect(sha256(file)).toBe(hash);
    expect(statSync(file).mtimeMs).toBe(mtime);
    expectClean();
  });

  it('refuses to dismount a busy filesystem, naming the process, then --force detaches it', async () => {
    dir = await makeTempDir();
    const file = await createVault('busy.vol');
    const mountpoint = makeDir('mnt');
    await expectMounted(file, [mountpoint]);
    writeFileSync(join(mountpoint, 'data.txt'), 'still here');
    const holder = spawn('sleep', ['600'], { cwd: mountpoint, stdio: 'ignore' });
    try {
      await waitFor(() => existsSync(`/proc/${holder.pid}/cwd`), 'the holder to start');
      const refused = await dismount(mountpoint);
      expect(refused.code).toBe(5);
      expect(refused.stderr).toContain(`sleep (pid ${holder.pid})`);
      expect(refused.stderr).toMatch(/--force/);
      expect(isMounted(mountpoint)).toBe(true);

      const forced = await dismount(mountpoint, ['--force']);
      expect(forced.code).toBe(0);
      expect(isMounted(mountpoint)).toBe(false);
    } finally {
      holder.kill('SIGKILL');
    }
    // The vault closes once the last holder is gone.
    await waitFor(
      () => leftovers(dir, extraPaths).length === 0,
      'the vault to close after the holder exited',
    );
    await expectMounted(file, [mountpoint]);
    expect(readFileSync(join(mountpoint, 'data.txt'), 'utf8')).toBe('still here');
    expect((await dismount(mountpoint)).code).toBe(0);
    expectClean();
  });

  it('after kill -9 of the daemon, list shows it broken and dismount cleans every remain', async () => {
    dir = await makeTempDir();
    const file = await createVault('killed.vol');
    const mountpoint = makeDir('mnt');
    await expectMounted(file, [mountpoint]);
    // What was fsync'd before the crash must survive it.
    const durable = randomBytes(1 << 20);
    const fd = openSync(join(mountpoint, 'durable.bin'), 'w');
    writeSync(fd, durable);
    fsyncSync(fd);
    closeSync(fd);
    syncfs(mountpoint);
    const [entry] = (
      JSON.parse((await vault(['list', '--json'])).stdout) as Array<{ file: string; pid: number }>
    ).filter((item) => item.file === file);
    expect(entry).toBeDefined();
    process.kill(entry!.pid, 'SIGKILL');
    await waitFor(() => !vaultDaemons().includes(entry!.pid), 'the daemon to die');

    const listed = JSON.parse((await vault(['list', '--json'])).stdout) as Array<Record<string, unknown>>;
    expect(listed).toContainEqual(expect.objectContaining({ file, state: 'broken' }));
    const refused = await mount(file, [makeDir('other')]);
    expect(refused.code).toBe(5);

    const result = await dismount(file);
    expect(result.code).toBe(0);
    expect(isMounted(mountpoint)).toBe(false);
    expectClean();
    expect((await vault(['list', '--json'])).stdout).not.toContain(file);

    await expectMounted(file, [mountpoint]);
    expect(readFileSync(join(mountpoint, 'durable.bin')).equals(durable)).toBe(true);
    expect((await dismount(mountpoint)).code).toBe(0);
    expectClean();
  });

  it('SIGTERM to the daemon dismounts cleanly by itself', async () => {
    dir = await makeTempDir();
    const file = await createVault('term.vol');
    const mountpoint = makeDir('mnt');
    await expectMounted(file, [mountpoint]);
    writeFileSync(join(mountpoint, 'flushed.txt'), 'flushed');
    const listed = JSON.parse((await vault(['list', '--json'])).stdout) as Array<{
      file: string;
      pid: number;
    }>;
    const pid = listed.find((item) => item.file === file)?.pid ?? 0;
    process.kill(pid, 'SIGTERM');
    await waitFor(() => leftovers(dir, extraPaths).length === 0, 'the daemon to dismount everything');
    await expectMounted(file, [mountpoint]);
    expect(readFileSync(join(mountpoint, 'flushed.txt'), 'utf8')).toBe('flushed');
    expect((await dismount(mountpoint)).code).toBe(0);
    expectClean();
  });

  it('a plain umount of the mountpoint is noticed: the daemon takes the rest down and the next mount works (18.11)', async () => {
    dir = await makeTempDir();
    const file = await createVault('umount.vol');
    const mountpoint = makeDir('mnt');
    await expectMounted(file, [mountpoint]);
    writeFileSync(join(mountpoint, 'kept.txt'), 'kept');
    const entry = await listedVault(file);
    expect(entry?.state).toBe('ok');
    const unmounted = await sh('umount', [mountpoint]);
    expect(unmounted.code, unmounted.stderr).toBe(0);
    // The daemon (with the key), the loop device, the block file and the state directory all go.
    await waitFor(() => !vaultDaemons().includes(entry!.pid), 'the daemon to exit', 20_000);
    expectClean();
    expect(await listedVault(file)).toBeUndefined();
    const log = readFileSync(`${RUN_DIR}/log/${statSync(file).dev}-${statSync(file).ino}.log`, 'utf8');
    expect(log).toMatch(/unmounted outside vault[\s\S]*stopped; keys wiped/);
    // Mounting again is not "remains of an earlier mount whose daemon is gone".
    await expectMounted(file, [mountpoint]);
    expect(readFileSync(join(mountpoint, 'kept.txt'), 'utf8')).toBe('kept');
    expect((await dismount(mountpoint)).code).toBe(0);
    expectClean();
  });

  it('kill -9 of vault create during mkfs: its dead FUSE mount is reaped by vault list and by the next create (18.12)', async () => {
    dir = await makeTempDir();
    for (const reaper of ['list', 'create'] as const) {
      const child = spawn(
        process.execPath,
        [VAULT_BIN, 'create', '256M', join(dir, `killed-${reaper}.vol`), ...secretArgs],
        { stdio: ['pipe', 'ignore', 'ignore'] },
      );
      child.stdin.end(`${PASSWORD}\n`);
      const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
      const prefix = `${RUN_DIR}/bridge-${child.pid}-`;
      const bridge = () => mounts().find((entry) => entry.mountpoint.startsWith(prefix))?.mountpoint;
      await waitFor(() => bridge() !== undefined, 'create to mount its bridge', 60_000);
      const bridgeDir = bridge()!;
      await waitFor(() => mkfsRunningOn(bridgeDir), 'mkfs to run', 10_000).catch(() => {});
      child.kill('SIGKILL');
      await exited;
      // What the bug left: a dead FUSE mount under the run directory.
      expect(isMounted(bridgeDir)).toBe(true);
      if (reaper === 'list') expect((await vault(['list'])).code).toBe(0);
      else await createVault('after.vol', '64M');
      await waitFor(() => !isMounted(bridgeDir), `${reaper} to unmount ${bridgeDir}`, 10_000);
      expect(existsSync(bridgeDir)).toBe(false);
    }
    expectClean();
  });

  // `dismount --all` is every vault of this user, for root every vault on the machine: on a machine
  // where other vaults are mounted (the user's own, another test run) it would take them away too. So
  // the test runs only when no other vault is listed, checked before it mounts and again just before
  // `--all`; otherwise it dismounts its own two one by one and is skipped, saying why.
  it('dismount --all dismounts every vault', async (context) => {
    const othersListed = async (ours: readonly string[]) =>
      ((await listed()) ?? ['(vault list failed)']).filter((file) => !ours.includes(file));
    const before = await othersListed([]);
    if (before.length > 0)
      skipTest(context, `other vaults are mounted (${before.join(', ')}); --all would dismount them too`);
    dir = await makeTempDir();
    const first = await createVault('one.vol');
    const second = await createVault('two.vol');
    const mountFirst = makeDir('one');
    const mountSecond = makeDir('two');
    await expectMounted(first, [mountFirst]);
    await expectMounted(second, [mountSecond, '--read-only']);
    const others = await othersListed([first, second]);
    if (others.length > 0) {
      expect((await dismount(first)).code).toBe(0);
      expect((await dismount(second)).code).toBe(0);
      expectClean();
      skipTest(
        context,
        `other vaults were mounted meanwhile (${others.join(', ')}); --all would dismount them too`,
      );
    }
    const result = await vault(['dismount', '--all']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(first);
    expect(result.stdout).toContain(second);
    expect(await listed()).toEqual([]);
    expectClean();
  });

  it('refuses a second mount of the same vault, also through a hard link', async () => {
    dir = await makeTempDir();
    const file = await createVault('double.vol');
    const link = join(dir, 'link.vol');
    linkSync(file, link);
    const mountpoint = makeDir('mnt');
    const other = makeDir('other');
    await expectMounted(file, [mountpoint]);

    for (const path of [file, link]) {
      const result = await mount(path, [other]);
      expect(result.code).toBe(5);
      expect(result.stderr).toContain('already mounted');
      expect(isMounted(other)).toBe(false);
    }
    expect((await dismount(link)).code).toBe(0);
    expectClean();
  });

  it('failed mounts leave nothing behind', async () => {
    dir = await makeTempDir();
    const file = await createVault('fail.vol');
    const mountpoint = makeDir('mnt');

    const daemonsBefore = daemonPids();
    const wrong = await mount(file, [mountpoint], 'wrong password');
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain('cannot unlock');
    expectClean();

    const full = makeDir('full');
    writeFileSync(join(full, 'existing.txt'), 'x');
    const notEmpty = await mount(file, [full]);
    expect(notEmpty.code).toBe(2);
    expect(notEmpty.stderr).toContain('not empty');

    const missing = await mount(file, [join(dir, 'nowhere')]);
    expect(missing.code).toBe(4);
    expect(newDaemons(daemonsBefore)).toEqual([]);

    // A mountpoint that is in use: another vault is mounted there.
    const other = await createVault('other.vol');
    await expectMounted(other, [mountpoint]);
    const busy = await mount(file, [mountpoint]);
    expect(busy.code).toBe(5);
    expect(busy.stderr).toContain('already mounted at');
    expect((await dismount(mountpoint)).code).toBe(0);

    const noFile = await mount(join(dir, 'absent.vol'), [mountpoint]);
    expect(noFile.code).toBe(4);
    expectClean();
    expect(newDaemons(daemonsBefore)).toEqual([]);
  });

  it('--no-filesystem prints the block file, which holds the cleartext volume', async () => {
    dir = await makeTempDir();
    const file = await createVault('raw.vol');
    const blockFile = await expectMounted(file, ['--no-filesystem']);
    expect(blockFile).toMatch(/^\/run\/vault\/.+\/volume$/);
    const probe = await sh('blkid', ['-p', '-o', 'value', '-s', 'TYPE', blockFile]);
    expect(probe.stdout.trim()).toBe('ext4');
    expect(statSync(blockFile).size).toBeGreaterThan(60 << 20);
    expect((await dismount(file)).code).toBe(0);
    expectClean();
  });
});
