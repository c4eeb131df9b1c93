// A machine with other users on it (SECURITY.md "Shared machines"): every point of the security issue
// tried as the other user would. Runs as root; the other users are numeric uids run with setpriv (no
// passwd entry needed) and, for --user mounts, the account `vaulttest` (created when missing).
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FAST_COST,
  forceCleanup,
  isMounted,
  lacks,
  leftovers,
  listedVault,
  sh,
  useTempDir,
  VAULT_BIN,
  vault,
  vaultOk,
} from './helpers.js';

const PASSWORD = 'shared machine';
const SECRET = ['--password-stdin', '--non-interactive'];
/** The user who "ran sudo" (SUDO_UID), and another user of the machine. */
const OWNER = 4242;
const OTHER = 65534;
const AS_SUDO_USER = { SUDO_UID: String(OWNER), SUDO_GID: String(OWNER) };

/** Runs a command as `uid` (group = uid, no supplementary groups). */
function runAs(uid: number, command: string, env: Record<string, string> = {}) {
  const vars = Object.entries(env).map(([name, value]) => `${name}=${value}`);
  return sh('setpriv', [
    `--reuid=${uid}`,
    `--regid=${uid}`,
    '--clear-groups',
    '--',
    'env',
    ...vars,
    'sh',
    '-c',
    command,
  ]);
}

function mountOptions(mountpoint: string): string[] {
  const line = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((entry) => entry.split(' ')[4] === mountpoint);
  return line?.split(' ')[5]?.split(',') ?? [];
}

describe.skipIf(lacks('mount'))('security on a shared machine', () => {
  let dir = '';
  useTempDir('vault-security-', (made) => {
    dir = made;
  });
  beforeAll(() => {
    // Other users must be able to reach the test's directory: it is what makes the refusals meaningful.
    chmodSync(dir, 0o755);
  });

  async function makeVault(name: string, extra: string[] = [], env: Record<string, string> = {}) {
    const file = join(dir, name);
    const made = await vault(['create', '64M', file, ...SECRET, '--cost', FAST_COST, ...extra], {
      stdin: `${PASSWORD}\n`,
      env,
    });
    expect(made.code, made.stderr).toBe(0);
    return file;
  }

  async function mount(file: string, args: string[] = [], env: Record<string, string> = {}) {
    const mounted = await vault(['mount', file, ...args, ...SECRET, '--cost', FAST_COST], {
      stdin: `${PASSWORD}\n`,
      env,
    });
    expect(mounted.code, mounted.stderr).toBe(0);
    return mounted.stdout.trim();
  }

  it('a setuid-root program inside a vault runs without privilege, and its device nodes cannot be opened (1)', async () => {
    const file = await makeVault('suid.vol', ['--owner', String(OTHER)]);
    const mountpoint = join(dir, 'suid');
    mkdirSync(mountpoint);
    await mount(file, [mountpoint, '--fs-options', 'noatime']);
    const options = mountOptions(mountpoint);
    expect(options).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'noatime']));
    // The bridge's own FUSE mount too.
    const entry = await listedVault(file);
    expect(mountOptions(join(entry?.blockFile ?? '', '..'))).toEqual(
      expect.arrayContaining(['nosuid', 'nodev', 'noexec']),
    );

    await sh('cp', ['/usr/bin/id', join(mountpoint, 'id')]);
    chownSync(join(mountpoint, 'id'), 0, 0);
    chmodSync(join(mountpoint, 'id'), 0o4755);
    const ran = await runAs(OTHER, `${mountpoint}/id`);
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toMatch(/^uid=65534/);
    expect(ran.stdout).not.toMatch(/euid=0/);

    await sh('mknod', [join(mountpoint, 'null'), 'c', '1', '3']);
    expect(() => openSync(join(mountpoint, 'null'), 'w')).toThrow(/EACCES/);

    await vaultOk(['dismount', mountpoint]);
  });

  it('--fs-options can add options but never undo nosuid or nodev', async () => {
    const file = await makeVault('fsopts.vol', ['--filesystem', 'none']);
    for (const option of ['suid', 'dev', 'defaults', 'noatime,suid', 'ro']) {
      const refused = await vault(['mount', file, join(dir, 'nowhere'), '--fs-options', option, ...SECRET], {
        stdin: `${PASSWORD}\n`,
      });
      expect(refused.code, option).toBe(2);
      expect(refused.stderr).toMatch(/^vault: error: --fs-options cannot include/m);
    }
  });

  it('a filesystem vault does not know is refused by name, not handed to whichever driver probes it (1)', async () => {
    const file = await makeVault('swap.vol', ['--filesystem', 'none']);
    const blockFile = await mount(file, ['--no-filesystem']);
    expect((await sh('mkswap', [blockFile])).code).toBe(0);
    await vaultOk(['dismount', file]);
    const mountpoint = join(dir, 'swap');
    mkdirSync(mountpoint);
    const refused = await vault(['mount', file, mountpoint, ...SECRET, '--cost', FAST_COST], {
      stdin: `${PASSWORD}\n`,
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/holds a swap filesystem, which vault does not mount/);
    expect(refused.stderr).toMatch(
      /^vault: hint: vault mounts ext2, ext3, ext4, exfat, vfat, xfs, btrfs, ntfs/m,
    );
    expect(isMounted(mountpoint)).toBe(false);
    expect(leftovers(dir)).toEqual([]);
  });

  it('after sudo vault create and sudo vault mount, the user copies files in; no other user lists, reads or writes (3)', async () => {
    const file = await makeVault('mine.vol', [], AS_SUDO_USER);
    const mountpoint = await mount(file, [], AS_SUDO_USER);
    try {
      expect(mountpoint).toMatch(/^\/media\/vault\//);
      const root = statSync(mountpoint);
      expect([root.uid, root.gid, root.mode & 0o777]).toEqual([OWNER, OWNER, 0o700]);
      const copied = await runAs(
        OWNER,
        `cp -r /usr/share/doc/util-linux ${mountpoint}/ && echo mine > ${mountpoint}/note`,
      );
      expect(copied.code, copied.stderr).toBe(0);
      expect((await runAs(OTHER, `ls ${mountpoint}`)).stderr).toMatch(/Permission denied/);
      expect((await runAs(OTHER, `cat ${mountpoint}/note`)).stderr).toMatch(/Permission denied/);
      expect((await runAs(OTHER, `echo x > ${mountpoint}/other`)).stderr).toMatch(/Permission denied/);
    } finally {
      await vault(['dismount', file]);
    }
    // The mountpoint it created went with the dismount.
    expect(existsSync(mountpoint)).toBe(false);
  });

  it('an exfat vault mounted by root belongs to the user who ran sudo, with umask 077 (2)', async () => {
    const file = await makeVault('stick.vol', ['--filesystem', 'exfat'], AS_SUDO_USER);
    const mountpoint = join(dir, 'stick');
    mkdirSync(mountpoint);
    await mount(file, [mountpoint], AS_SUDO_USER);
    try {
      expect(mountOptions(mountpoint)).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
      const wrote = await runAs(OWNER, `mkdir ${mountpoint}/d && echo mine > ${mountpoint}/d/note`);
      expect(wrote.code, wrote.stderr).toBe(0);
      const note = statSync(join(mountpoint, 'd/note'));
      expect([note.uid, note.mode & 0o077]).toEqual([OWNER, 0]);
      expect((await runAs(OTHER, `ls ${mountpoint}`)).code).not.toBe(0);
      expect((await runAs(OTHER, `cat ${mountpoint}/d/note`)).code).not.toBe(0);
      expect((await runAs(OTHER, `echo x > ${mountpoint}/other`)).code).not.toBe(0);
      expect(existsSync(join(mountpoint, 'other'))).toBe(false);
    } finally {
      await vault(['dismount', file]);
    }
  });

  it("as a user without root, vault list and vault dismount of root's vault say it needs root (exit 6), nothing changes (18.13)", async () => {
    const file = await makeVault('roots.vol');
    const mountpoint = join(dir, 'roots');
    mkdirSync(mountpoint);
    await mount(file, [mountpoint]);
    try {
      const cli = `${process.execPath} ${VAULT_BIN}`;
      for (const args of ['list', 'list --json']) {
        const listed = await runAs(OTHER, `${cli} ${args}`);
        expect(listed.code, listed.stderr).toBe(6);
        expect(listed.stdout).toBe('');
        expect(listed.stderr).toMatch(
          /^vault: error: (a vault is mounted by root: listing it|\d+ vaults are mounted by root: listing them) needs root$/m,
        );
        expect(listed.stderr).toMatch(/^vault: hint: run it with sudo: sudo vault list$/m);
      }
      for (const target of [mountpoint, file]) {
        const refused = await runAs(OTHER, `${cli} dismount ${target}`);
        expect(refused.code, refused.stderr).toBe(6);
        expect(refused.stderr).toContain(
          `vault: error: ${target} was mounted by root: dismounting it needs root`,
        );
        expect(refused.stderr).toContain(`sudo vault dismount ${target}`);
      }
      // Something that is not mounted at all is still "no mounted vault", for root's users too.
      const nothing = await runAs(OTHER, `${cli} dismount ${dir}`);
      expect(nothing.code, nothing.stderr).toBe(4);
      expect(isMounted(mountpoint)).toBe(true);
      expect((await listedVault(file))?.state).toBe('ok');
    } finally {
      expect((await vault(['dismount', mountpoint])).code).toBe(0);
    }
    expect(leftovers(dir)).toEqual([]);
  });

  it('the daemon cannot dump core and keeps its keys in locked memory (5)', async () => {
    const file = await makeVault('daemon.vol', ['--filesystem', 'none']);
    await mount(file, ['--no-filesystem']);
    const pid = (await listedVault(file))?.pid ?? 0;
    try {
      expect(readFileSync(`/proc/${pid}/limits`, 'utf8')).toMatch(/^Max core file size\s+0\s+0\s+bytes/m);
      const locked = Number(/^VmLck:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
      expect(locked).toBeGreaterThan(0);
      // Non-dumpable: /proc/<pid>/mem and the like belong to root, not to the daemon's user.
      expect(statSync(`/proc/${pid}/mem`).uid).toBe(0);
    } finally {
      await vaultOk(['dismount', file]);
    }
  });

  it('a device node, fifo or symlink is never a target, --force or not, and stays as it was (7)', async () => {
    const node = join(dir, 'null-node');
    const fifo = join(dir, 'fifo');
    const link = join(dir, 'link');
    const victim = join(dir, 'victim');
    await sh('mknod', [node, 'c', '1', '3']);
    await sh('mkfifo', [fifo]);
    const image = join(dir, 'source.img');
    writeFileSync(victim, 'precious');
    writeFileSync(image, Buffer.alloc(1 << 20));
    symlinkSync(victim, link);
    for (const [target, kind] of [
      [node, 'a character device'],
      [fifo, 'a fifo'],
      [link, 'a symbolic link'],
    ] as const) {
      for (const command of [
        ['create', '64M', target, '--force', '--filesystem', 'none'],
        ['import', image, target, '--force'],
      ]) {
        const refused = await vault([...command, ...SECRET, '--cost', FAST_COST], { stdin: `${PASSWORD}\n` });
        expect(refused.code, `${command[0]} ${kind}`).toBe(2);
        expect(refused.stderr).toContain(`not a regular file: ${target} (${kind})`);
      }
    }
    expect(statSync(node).isCharacterDevice()).toBe(true);
    expect(statSync(fifo).isFIFO()).toBe(true);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
  });

  it('create --quick reserves the whole file through its descriptor (6)', async () => {
    const file = await makeVault('quick.vol', ['--quick', '--filesystem', 'none']);
    const info = statSync(file);
    expect(info.size).toBe(64 << 20);
    expect(info.blocks * 512).toBeGreaterThanOrEqual(64 << 20);
  });

  it('a mountpoint whose path another user could change is refused before the password is asked (8)', async () => {
    const file = await makeVault('redirect.vol');
    const theirs = join(dir, 'theirs');
    mkdirSync(join(theirs, 'mnt'), { recursive: true });
    chownSync(theirs, OTHER, OTHER);
    const open = join(dir, 'open');
    mkdirSync(join(open, 'mnt'), { recursive: true });
    chmodSync(open, 0o777); // writable by all, not sticky: anyone can swap `mnt` for a symlink
    for (const [mountpoint, why] of [
      [join(theirs, 'mnt'), `${theirs} belongs to another user (uid ${OTHER})`],
      [join(open, 'mnt'), `${open} is writable by other users`],
    ] as const) {
      const refused = await vault(['mount', file, mountpoint, '--non-interactive']);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`the mountpoint ${mountpoint} is not safe to mount on: ${why}`);
      expect(isMounted(mountpoint)).toBe(false);
    }
    expect(leftovers(dir)).toEqual([]);
  });

  it('a weak cost level warns on every path, naming its memory and passes (9)', async () => {
    const file = await makeVault('weak.vol', ['--filesystem', 'none']);
    for (const command of [
      ['info', file],
      ['header', 'backup', file, join(dir, 'weak.hdr')],
    ]) {
      const result = await vault([...command, ...SECRET, '--cost', '3'], {
        stdin: `${PASSWORD}\n`,
        keepWeakCost: true,
      });
      expect(result.stderr).toContain(
        'vault: warning: cost level 3 is weak: Argon2id with 4 MiB and 1 pass makes each password guess cheap',
      );
    }
    const strong = await vault(['info', file, ...SECRET, '--cost', '8'], {
      stdin: `${PASSWORD}\n`,
      keepWeakCost: true,
    });
    expect(strong.stderr).not.toMatch(/is weak/);
  });
});

describe.skipIf(lacks('mount', 'fuse2fs'))('security of --user mounts', () => {
  const USER = 'vaulttest';
  let dir = '';
  let fuseMode = 0;
  let uid = 0;
  useTempDir('vault-security-user-', (made) => {
    dir = made;
  });
  beforeAll(async () => {
    chmodSync(dir, 0o755);
    if ((await sh('id', ['-u', USER])).code !== 0) await sh('useradd', ['-m', USER]);
    uid = Number((await sh('id', ['-u', USER])).stdout.trim());
    fuseMode = statSync('/dev/fuse').mode & 0o777;
    chmodSync('/dev/fuse', 0o666);
  });
  afterAll(async () => {
    // Its own vault only, if a failed test left it mounted: `dismount --all` as this user would also
    // take the vaults of another test run on this machine, which share the user.
    await sh('runuser', [
      '-u',
      USER,
      '--',
      process.execPath,
      VAULT_BIN,
      'dismount',
      '--force',
      join(dir, 'user.vol'),
    ]);
    chmodSync('/dev/fuse', fuseMode);
    await forceCleanup(dir);
  });

  function asUser(command: string) {
    return sh('runuser', ['-u', USER, '--', 'sh', '-c', command], 120_000);
  }

  it('another process of the same user cannot read the --user daemon memory (5)', async () => {
    const file = join(dir, 'user.vol');
    await vaultOk(['create', '64M', file, ...SECRET], `${PASSWORD}\n`);
    chownSync(file, uid, uid);
    const mounted = await asUser(
      `printf '%s\\n' '${PASSWORD}' | ${process.execPath} ${VAULT_BIN} mount ${file} --user --no-filesystem ${SECRET.join(' ')} --cost ${FAST_COST}`,
    );
    expect(mounted.code, mounted.stderr).toBe(0);
    const listed = JSON.parse(
      (await asUser(`${process.execPath} ${VAULT_BIN} list --json`)).stdout,
    ) as Array<{
      file: string;
      pid: number;
    }>;
    const pid = listed.find((entry) => entry.file === file)?.pid ?? 0;
    expect(pid).toBeGreaterThan(0);
    // The control: a plain process of the same user can be read by it, so the refusal below means something.
    const control = await asUser('sleep 30 & p=$!; (exec 3</proc/$p/mem) && echo readable; kill $p');
    expect(control.stdout).toContain('readable');
    const read = await asUser(`(exec 3</proc/${pid}/mem) && echo readable`);
    expect(read.stdout).not.toContain('readable');
    expect(read.stderr).toMatch(/Permission denied/);
    expect((await asUser(`cat /proc/${pid}/environ`)).stderr).toMatch(/Permission denied/);
    expect((await asUser(`${process.execPath} ${VAULT_BIN} dismount ${file}`)).code).toBe(0);
  });

  it('a run directory another user made first is refused, and nothing is created in it (11)', async () => {
    const victim = 4343;
    const squatted = `/tmp/vault-${victim}`;
    await sh('rm', ['-rf', squatted]);
    mkdirSync(squatted, { mode: 0o777 });
    chmodSync(squatted, 0o777);
    chownSync(squatted, 65534, 65534);
    try {
      const file = join(dir, 'squat.vol');
      await vaultOk(['create', '64M', file, ...SECRET, '--filesystem', 'none'], `${PASSWORD}\n`);
      chownSync(file, victim, victim);
      const refused = await runAs(
        victim,
        `printf '%s\\n' '${PASSWORD}' | ${process.execPath} ${VAULT_BIN} mount ${file} --user --no-filesystem ${SECRET.join(' ')} --cost ${FAST_COST}`,
        { HOME: '/nonexistent', PATH: process.env.PATH ?? '/usr/bin:/bin' },
      );
      expect(refused.code).toBe(5);
      expect(refused.stderr).toContain(`${squatted} is not a private directory of yours (owner 65534`);
      expect((await sh('ls', ['-A', squatted])).stdout).toBe('');
    } finally {
      await sh('rm', ['-rf', squatted]);
    }
  });
});
