// vault import / export as a user runs them (real bin/vault, FUSE, loop devices, ext4, as root): a raw
// ext4 image with files goes in, mounts with the same files, and comes back out byte for byte; export
// refuses a terminal; Ctrl-C leaves no partial vault or image.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  FAST_COST,
  forceCleanup,
  lacks,
  leftovers,
  makeTempDir,
  removeTempDirs,
  sh,
  VAULT_BIN,
  vault,
  waitFor,
} from './helpers.js';

const PASSWORD = 'import export password';
const secretArgs = ['--password-stdin', '--non-interactive', '--cost', FAST_COST];

let dir = '';

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A raw ext4 image of `size` bytes (not a multiple of 4096) with files put in through a loop mount. */
async function makeExt4Image(
  name: string,
  size: number,
): Promise<{ path: string; files: Map<string, string> }> {
  const path = join(dir, name);
  writeFileSync(path, '');
  expect((await sh('truncate', ['-s', String(size), path])).code).toBe(0);
  const mkfs = await sh('mkfs.ext4', ['-q', '-F', path]);
  expect(mkfs.code, mkfs.stderr).toBe(0);
  const mountpoint = join(dir, `${name}.mnt`);
  mkdirSync(mountpoint);
  const mounted = await sh('mount', ['-o', 'loop', path, mountpoint]);
  expect(mounted.code, mounted.stderr).toBe(0);
  const files = new Map<string, string>();
  try {
    const contents: Array<[string, Buffer]> = [
      ['notes.txt', Buffer.from('imported notes\n')],
      ['big.bin', randomBytes(5 << 20)],
      ['deep/er/small.bin', randomBytes(12345)],
    ];
    for (const [relative, data] of contents) {
      mkdirSync(join(mountpoint, relative, '..'), { recursive: true });
      writeFileSync(join(mountpoint, relative), data);
      files.set(relative, sha256(data));
    }
  } finally {
    expect((await sh('umount', [mountpoint])).code).toBe(0);
  }
  return { path, files };
}

/** Spawns bin/vault with the password on stdin and returns the child (for signals). */
function spawnVault(args: string[]) {
  const child = spawn(process.execPath, [VAULT_BIN, ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  child.stdin.end(`${PASSWORD}\n`);
  const exited = new Promise<{ code: number | null; stderr: string }>((resolveExit) => {
    child.on('close', (code) => resolveExit({ code, stderr }));
  });
  return { child, exited };
}

/** Bytes the process has read or written so far (/proc/<pid>/io), 0 once it is gone. */
function ioBytes(pid: number, field: 'rchar' | 'wchar'): number {
  try {
    const match = new RegExp(`^${field}: (\\d+)$`, 'm').exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return Number(match?.[1] ?? 0);
  } catch {
    return 0;
  }
}

describe.skipIf(lacks('mount'))('vault import / export', () => {
  afterEach(async () => {
    const cleaned = await forceCleanup(dir);
    expect(cleaned, 'a test left these behind').toEqual([]);
  });

  afterAll(async () => {
    await removeTempDirs();
  });

  it('imports a raw ext4 image that mounts with the same files and exports back byte for byte', async () => {
    dir = await makeTempDir('vault-e2e-image-');
    const size = 40 * 2 ** 20 + 1536; // rounded up to the next 4 KiB in the vault
    const { path: image, files } = await makeExt4Image('disk.img', size);
    const original = readFileSync(image);
    const file = join(dir, 'disk.vol');

    const imported = await vault(['import', image, file, ...secretArgs], { stdin: `${PASSWORD}\n` });
    expect(imported.stderr).toBe('');
    expect(imported.code).toBe(0);
    expect(imported.stdout).toContain('filesystem ext4');
    const volumeSize = Math.ceil(size / 4096) * 4096;
    expect(statSync(file).size).toBe(volumeSize + 262144);
    expect(readFileSync(file).includes(original.subarray(1024, 1024 + 256))).toBe(false);

    // Export before mounting: mounting ext4 updates its superblock (mount time, count).
    const out = join(dir, 'out.img');
    const exported = await vault(['export', file, out, ...secretArgs], { stdin: `${PASSWORD}\n` });
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stderr).toMatch(/warning: .*NOT encrypted/);
    const image2 = readFileSync(out);
    expect(image2.length).toBe(volumeSize);
    expect(image2.subarray(0, size).equals(original)).toBe(true);
    expect(image2.subarray(size).every((byte) => byte === 0)).toBe(true);
    expect(statSync(out).mode & 0o777).toBe(0o600);

    // The same through stdout.
    const streamed = await sh('sh', [
      '-c',
      `printf '%s\\n' '${PASSWORD}' | '${process.execPath}' '${VAULT_BIN}' export '${file}' - ${secretArgs.join(' ')} | sha256sum`,
    ]);
    expect(streamed.stdout.split(' ')[0]).toBe(sha256(image2));

    // An existing output needs --force.
    const again = await vault(['export', file, out, ...secretArgs], { stdin: `${PASSWORD}\n` });
    expect(again.code).toBe(8);
    expect(again.stderr).toMatch(/file exists/);

    const mountpoint = join(dir, 'mnt');
    mkdirSync(mountpoint);
    const mounted = await vault(['mount', file, mountpoint, ...secretArgs], { stdin: `${PASSWORD}\n` });
    expect(mounted.code, mounted.stderr).toBe(0);
    try {
      for (const [relative, hash] of files) {
        expect(sha256(readFileSync(join(mountpoint, relative))), relative).toBe(hash);
      }
    } finally {
      expect((await vault(['dismount', mountpoint])).code).toBe(0);
    }
    expect(leftovers(dir)).toEqual([]);
  });

  it('import refuses an image whose filesystem is mounted read-write (exit 5)', async () => {
    dir = await makeTempDir('vault-e2e-image-');
    const { path: image } = await makeExt4Image('busy.img', 8 * 2 ** 20);
    const mountpoint = join(dir, 'busy.img.mnt'); // made (and left empty) by makeExt4Image
    expect((await sh('mount', ['-o', 'loop', image, mountpoint])).code).toBe(0);
    try {
      const refused = await vault(['import', image, join(dir, 'busy.vol'), ...secretArgs], {
        stdin: `${PASSWORD}\n`,
      });
      expect(refused.code).toBe(5);
      expect(refused.stderr).toContain(`mounted read-write at ${mountpoint}`);
    } finally {
      expect((await sh('umount', [mountpoint])).code).toBe(0);
    }
    expect(readdirSync(dir).sort()).toEqual(['busy.img', 'busy.img.mnt']);
  });

  it('export refuses a terminal as output (exit 2), before asking for a password', async () => {
    dir = await makeTempDir('vault-e2e-image-');
    const file = join(dir, 'tty.vol');
    const created = await vault(['create', '8M', file, '--filesystem', 'none', '--quick', ...secretArgs], {
      stdin: `${PASSWORD}\n`,
    });
    expect(created.code, created.stderr).toBe(0);
    for (const out of ['-', '/dev/tty']) {
      // script gives the command a terminal as stdin, stdout and stderr; -e passes its exit code on.
      const inner = `'${process.execPath}' '${VAULT_BIN}' export '${file}' ${out} --non-interactive --cost ${FAST_COST}`;
      const result = await sh('script', ['-qec', inner, '/dev/null']);
      expect(result.code, result.stdout).toBe(2);
      expect(result.stdout).toContain('refusing to write a disk image to a terminal');
    }
    expect(readdirSync(dir).sort()).toEqual(['tty.vol']);
  });

  it('export warns as info does when it reads the backup header, to a file and to stdout', async () => {
    dir = await makeTempDir('vault-e2e-image-');
    const file = join(dir, 'damaged.vol');
    const created = await vault(['create', '8M', file, '--filesystem', 'none', ...secretArgs], {
      stdin: `${PASSWORD}\n`,
    });
    expect(created.code, created.stderr).toBe(0);
    const before = await vault(['export', file, join(dir, 'before.img'), ...secretArgs], {
      stdin: `${PASSWORD}\n`,
    });
    expect(before.code, before.stderr).toBe(0);
    // Flip one byte of the primary header's sealed body.
    const raw = readFileSync(file);
    raw[3000] = (raw[3000] as number) ^ 0xff;
    writeFileSync(file, raw);
    const warning = 'vault: warning: primary header damaged, using the backup; run vault repair\n';
    const info = await vault(['info', file, ...secretArgs], { stdin: `${PASSWORD}\n` });
    expect(info.code).toBe(0);
    expect(info.stderr).toContain(warning);
    const toFile = await vault(['export', file, join(dir, 'after.img'), ...secretArgs], {
      stdin: `${PASSWORD}\n`,
    });
    expect(toFile.code, toFile.stderr).toBe(0);
    expect(toFile.stderr).toContain(warning);
    expect(readFileSync(join(dir, 'after.img')).equals(readFileSync(join(dir, 'before.img')))).toBe(true);
    const toStdout = await vault(['export', file, '-', ...secretArgs], { stdin: `${PASSWORD}\n` });
    expect(toStdout.code, toStdout.stderr).toBe(0);
    expect(toStdout.stderr).toContain(warning);
    // The vault itself is untouched: export opens it read-only and repairs nothing.
    expect(readFileSync(file).equals(raw)).toBe(true);
  });

  it('Ctrl-C during import leaves no vault, during export no image (exit 130)', async () => {
    dir = await makeTempDir('vault-e2e-image-');
    const image = join(dir, 'big.img');
    writeFileSync(image, randomBytes(1 << 20));
    expect((await sh('truncate', ['-s', '1G', image])).code).toBe(0);
    const target = join(dir, 'big.vol');

    const importing = spawnVault(['import', image, target, ...secretArgs]);
    await waitFor(() => ioBytes(importing.child.pid ?? 0, 'rchar') > 64 << 20, 'the import to copy 64 MiB');
    importing.child.kill('SIGINT');
    const imported = await importing.exited;
    expect(imported.code, imported.stderr).toBe(130);
    expect(imported.stderr).toMatch(/interrupted/);
    expect(readdirSync(dir)).toEqual(['big.img']);

    const file = join(dir, 'quick.vol');
    const created = await vault(['create', '1G', file, '--filesystem', 'none', '--quick', ...secretArgs], {
      stdin: `${PASSWORD}\n`,
    });
    expect(created.code, created.stderr).toBe(0);
    const exporting = spawnVault(['export', file, join(dir, 'out.img'), ...secretArgs]);
    await waitFor(() => ioBytes(exporting.child.pid ?? 0, 'wchar') > 64 << 20, 'the export to write 64 MiB');
    exporting.child.kill('SIGINT');
    const exported = await exporting.exited;
    expect(exported.code, exported.stderr).toBe(130);
    expect(readdirSync(dir).sort()).toEqual(['big.img', 'quick.vol']);
  });
});
