// Foreign volumes through the real CLI: LUKS2 (encrypted by cryptsetup itself), LUKS1, VeraCrypt (test
// writer, checked by cryptsetup tcryptDump) and TrueCrypt (made by tcplay on a loop device), each holding
// ext4: mounted with detection and with --type, a file read, a file written, dismounted, mounted again;
// the written file is then read from an independent decryption of the container (Python's cryptography
// + debugfs). Also info, export, import (migration), refusals, and a wrong secret leaving nothing behind.
import { chmodSync, chownSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeTcryptVolume } from '../tools/tcrypt-writer.js';
import { isMounted, lacks, loopDevices, ROOT, sh, useTempDir, VAULT_BIN, vault } from './helpers.js';

const PASSWORD = 'foreign secret';
const FAST_PBKDF2 = ['--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000'];
const PIM = '1';
const DECRYPT = join(ROOT, 'test/tools/decrypt-volume.py');

let dir = '';
useTempDir('vault-foreign-', (created) => {
  dir = created;
});

/** An ext4 image holding hello.txt. */
async function ext4Image(name: string, bytes: number, blockSize = '4096'): Promise<string> {
  const source = join(dir, `${name}.d`);
  await mkdir(source, { recursive: true });
  await writeFile(join(source, 'hello.txt'), `hello from ${name}\n`);
  const image = join(dir, `${name}.ext4`);
  await writeFile(image, Buffer.alloc(0));
  await truncate(image, bytes);
  const made = await sh('mkfs.ext4', ['-q', '-F', '-b', blockSize, '-d', source, image]);
  expect(made.code, made.stderr).toBe(0);
  return image;
}

const secretArgs = ['--password-stdin', '--non-interactive'];

/** Mounts with `autoArgs` (detection), then with `typeArgs`; each time reads, writes; then remounts. */
async function mountReadWrite(
  file: string,
  autoArgs: string[],
  typeArgs: string[],
  name: string,
): Promise<void> {
  const mountpoint = join(dir, `${name}.mnt`);
  await mkdir(mountpoint, { recursive: true });
  for (const args of [autoArgs, typeArgs]) {
    const mounted = await vault(['mount', file, mountpoint, ...secretArgs, '--cost', '1', ...args], {
      stdin: `${PASSWORD}\n`,
    });
    expect(mounted.code, mounted.stderr).toBe(0);
    expect(readFileSync(join(mountpoint, 'hello.txt'), 'utf8')).toBe(`hello from ${name}\n`);
    const listed = JSON.parse((await vault(['list', '--json'])).stdout) as Array<{
      file: string;
      format: string;
    }>;
    expect(listed.find((entry) => entry.file === file)?.format).toMatch(/luks|veracrypt|truecrypt/);
    // AES-XTS foreign volumes are served from the addon's C threads, as vaults are.
    expect(dataPathOf(file)).toBe('C threads (native/fuse3.c)');
    writeFileSync(join(mountpoint, 'written.txt'), `written through vault into ${name}\n`);
    expect((await vault(['dismount', file])).code).toBe(0);
    expect(isMounted(mountpoint)).toBe(false);
  }
  const again = await vault(['mount', file, mountpoint, ...secretArgs, ...typeArgs], {
    stdin: `${PASSWORD}\n`,
  });
  expect(again.code, again.stderr).toBe(0);
  expect(readFileSync(join(mountpoint, 'written.txt'), 'utf8')).toBe(`written through vault into ${name}\n`);
  expect((await vault(['dismount', file])).code).toBe(0);
}

/** The data path the daemon last logged for this volume (its log is /run/vault/log/<dev>-<ino>.log). */
function dataPathOf(file: string): string | undefined {
  const { dev, ino } = statSync(file);
  const log = readFileSync(`/run/vault/log/${dev}-${ino}.log`, 'utf8');
  return [...log.matchAll(/data path: (.*)$/gm)].at(-1)?.[1];
}

/** Decrypts the container with Python and reads written.txt with debugfs: no vault code involved. */
async function independentlyReadable(
  file: string,
  keyHex: string,
  info: { dataOffset: number; dataSize: number; sectorSize: number; ivOffset: number; cipher: string },
  name: string,
): Promise<void> {
  const image = join(dir, `${name}.decrypted`);
  const decrypted = await sh(
    'python3',
    [
      DECRYPT,
      file,
      keyHex,
      String(info.dataOffset),
      String(info.dataSize),
      String(info.sectorSize),
      String(info.ivOffset),
      info.cipher,
      image,
    ],
    120_000,
  );
  expect(decrypted.code, decrypted.stderr).toBe(0);
  const cat = await sh('debugfs', ['-R', 'cat /written.txt', image]);
  expect(cat.stdout).toBe(`written through vault into ${name}\n`);
  expect((await sh('e2fsck', ['-fn', image])).code).toBe(0);
}

async function infoJson(
  file: string,
  args: string[] = [],
): Promise<{
  format: string;
  dataOffset: number;
  dataSize: number;
  sectorSize: number;
  ivOffset: number;
  cipher: string;
  kdf: Record<string, unknown>;
}> {
  const result = await vault(['info', file, '--json', ...secretArgs, '--cost', '1', ...args], {
    stdin: `${PASSWORD}\n`,
  });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

function dumpedKey(output: string): string {
  const dump = output.slice(output.indexOf('MK dump:') + 8);
  return (dump.match(/\b[0-9a-f]{2}\b/g) ?? []).join('');
}

/** tcplay makes a TrueCrypt volume on a loop device over `file`; it prompts on a terminal, so a
 *  pseudo-terminal (Python's pty) answers: the passphrase twice (with `hidden`: the hidden passphrase
 *  twice and its size), then "y", each after a pause. */
async function tcplayCreate(
  file: string,
  prf: string,
  hidden?: { password: string; size: string },
  cipher = 'AES-256-XTS',
): Promise<void> {
  const loop = (await sh('losetup', ['--find', '--show', file])).stdout.trim();
  expect(loop).toMatch(/^\/dev\/loop\d+$/);
  try {
    const driver = `
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp('tcplay', ['tcplay', '-c', '-d', sys.argv[1], '-a', sys.argv[3], '-b', sys.argv[4], '-z', '-w'] + (['-g'] if len(sys.argv) > 5 else []))
answers = [sys.argv[2], sys.argv[2]] + ([sys.argv[5], sys.argv[5], sys.argv[6]] if len(sys.argv) > 5 else []) + ['y']
while True:
    ready, _, _ = select.select([fd], [], [], 60)
    if not ready: break
    try: data = os.read(fd, 4096)
    except OSError: break
    if not data: break
    if (b'assphrase' in data or b'(y/n)' in data or b'Size of hidden' in data) and answers:
        time.sleep(0.5)  # tcplay sets the terminal with TCSAFLUSH: an answer typed too early is discarded
        os.write(fd, (answers.pop(0) + '\\n').encode())
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
`;
    const made = await sh(
      'python3',
      ['-c', driver, loop, PASSWORD, prf, cipher, ...(hidden ? [hidden.password, hidden.size] : [])],
      120_000,
    );
    expect(made.code, made.stdout + made.stderr).toBe(0);
  } finally {
    await sh('losetup', ['-d', loop]);
  }
}

describe.skipIf(lacks('mount', 'cryptsetup', 'tcplay'))('foreign volumes through the CLI', () => {
  it('LUKS2 (4096-byte sectors, encrypted by cryptsetup reencrypt): mount, read, write, remount; independent decryption; info, export, import', async () => {
    const image = await ext4Image('luks2', 24 << 20);
    const file = join(dir, 'disk.luks2');
    writeFileSync(file, readFileSync(image));
    await truncate(file, 40 << 20);
    writeFileSync(join(dir, 'pass'), PASSWORD);
    const encrypted = await sh('cryptsetup', [
      'reencrypt',
      '-q',
      '--encrypt',
      '--type',
      'luks2',
      '--sector-size',
      '4096',
      ...FAST_PBKDF2,
      '--reduce-device-size',
      '16M',
      '--key-file',
      join(dir, 'pass'),
      file,
    ]);
    expect(encrypted.code, encrypted.stderr).toBe(0);
    await mountReadWrite(file, [], ['--type', 'luks'], 'luks2');
    const info = await infoJson(file);
    expect(info).toMatchObject({ format: 'luks2', sectorSize: 4096, cipher: 'aes-xts-plain64' });
    const key = dumpedKey(
      (await sh('cryptsetup', ['luksDump', '-q', '--dump-volume-key', '--key-file', join(dir, 'pass'), file]))
        .stdout,
    );
    await independentlyReadable(file, key, info, 'luks2');

    const text = await vault(['info', file, ...secretArgs], { stdin: `${PASSWORD}\n` });
    expect(text.stdout).toMatch(/format:\s+LUKS2/);
    expect(text.stdout).toMatch(/kdf:\s+PBKDF2-SHA256, 1000 iterations/);

    const exported = join(dir, 'luks2.img');
    const exportRun = await vault(['export', file, exported, ...secretArgs], { stdin: `${PASSWORD}\n` });
    expect(exportRun.code, exportRun.stderr).toBe(0);
    expect((await sh('debugfs', ['-R', 'cat /hello.txt', exported])).stdout).toBe('hello from luks2\n');

    const migrated = join(dir, 'migrated.vol');
    const imported = await vault(['import', file, migrated, ...secretArgs, '--cost', '1'], {
      stdin: `${PASSWORD}\nnew password\n`,
    });
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/Imported the luks2 volume/);
    const mountpoint = join(dir, 'migrated.mnt');
    await mkdir(mountpoint);
    const mounted = await vault(
      ['mount', migrated, mountpoint, ...secretArgs, '--cost', '1', '--type', 'vault'],
      { stdin: 'new password\n' },
    );
    expect(mounted.code, mounted.stderr).toBe(0);
    expect(readFileSync(join(mountpoint, 'written.txt'), 'utf8')).toBe('written through vault into luks2\n');
    expect((await vault(['dismount', migrated])).code).toBe(0);

    for (const command of [
      ['passwd', file],
      ['key', 'add', file],
      ['repair', file],
      ['resize', file, '+1M'],
    ]) {
      const refused = await vault([...command, ...secretArgs], { stdin: `${PASSWORD}\nx\n` });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/is a LUKS volume: vault \w+ works on vaults only/);
    }
  });

  it('LUKS1 (aes-xts-plain64, made by luksFormat, filled through --no-filesystem): mount, remount, independent decryption', async () => {
    const image = await ext4Image('luks1', 16 << 20);
    const file = join(dir, 'disk.luks1');
    await writeFile(file, Buffer.alloc(0));
    await truncate(file, 20 << 20);
    writeFileSync(join(dir, 'pass'), PASSWORD);
    expect(
      (
        await sh('cryptsetup', [
          'luksFormat',
          '-q',
          '--type',
          'luks1',
          '--pbkdf-force-iterations',
          '1000',
          '--key-file',
          join(dir, 'pass'),
          file,
        ])
      ).code,
    ).toBe(0);
    const exposed = await vault(['mount', file, '--no-filesystem', ...secretArgs], {
      stdin: `${PASSWORD}\n`,
    });
    expect(exposed.code, exposed.stderr).toBe(0);
    const copied = await sh('dd', [
      `if=${image}`,
      `of=${exposed.stdout.trim()}`,
      'bs=1M',
      'conv=fsync,notrunc',
      'status=none',
    ]);
    expect(copied.code, copied.stderr).toBe(0);
    expect((await vault(['dismount', file])).code).toBe(0);
    await mountReadWrite(file, [], ['--type', 'luks'], 'luks1');
    const info = await infoJson(file, ['--type', 'luks']);
    expect(info).toMatchObject({ format: 'luks1', sectorSize: 512 });
    const key = dumpedKey(
      (await sh('cryptsetup', ['luksDump', '-q', '--dump-volume-key', '--key-file', join(dir, 'pass'), file]))
        .stdout,
    );
    await independentlyReadable(file, key, info, 'luks1');
  });

  it('VeraCrypt (SHA-512, PIM 1; test writer, checked by cryptsetup tcryptDump): mount, read, write, remount; independent decryption', async () => {
    const image = await ext4Image('veracrypt', 8 << 20);
    const file = join(dir, 'disk.hc');
    const written = await writeTcryptVolume(file, {
      flavour: 'veracrypt',
      prf: 'sha512',
      iterations: 16000,
      password: Buffer.from(PASSWORD),
      fileSize: (8 << 20) + 262144,
      plain: readFileSync(image),
    });
    const dump = await sh('sh', [
      '-c',
      `printf '%s' "$0" | cryptsetup tcryptDump -q --dump-volume-key --veracrypt --veracrypt-pim ${PIM} --hash sha512 "$1"`,
      PASSWORD,
      file,
    ]);
    expect(dumpedKey(dump.stdout)).toBe(written.masterKey.toString('hex'));
    // Detection with the PIM given (VeraCrypt's PIM is never stored), then every narrowing option.
    await mountReadWrite(
      file,
      ['--pim', PIM],
      ['--type', 'veracrypt', '--pim', PIM, '--hash', 'sha512'],
      'veracrypt',
    );
    const info = await infoJson(file, ['--type', 'veracrypt', '--pim', PIM]);
    expect(info).toMatchObject({
      format: 'veracrypt',
      dataOffset: 131072,
      ivOffset: 256,
      kdf: { type: 'pbkdf2', hash: 'sha512', iterations: 16000 },
    });
    await independentlyReadable(file, written.masterKey.toString('hex'), info, 'veracrypt');
  });

  it("VeraCrypt with Argon2id (1.26.2x, PIM 1; test writer with @noble/hashes' Argon2id): mount by detection and with --hash argon2, remount; independent decryption", async () => {
    // cryptsetup 2.6 cannot read Argon2id VeraCrypt headers: the writer's key derivation is an
    // independent Argon2id implementation (test/unit/foreign-tcrypt.test.ts pins its output).
    const image = await ext4Image('vc-argon2', 8 << 20);
    const file = join(dir, 'argon2.hc');
    const written = await writeTcryptVolume(file, {
      flavour: 'veracrypt',
      prf: 'argon2',
      iterations: 0,
      pim: 1,
      password: Buffer.from(PASSWORD),
      fileSize: (8 << 20) + 262144,
      plain: readFileSync(image),
    });
    await mountReadWrite(
      file,
      ['--pim', PIM],
      ['--type', 'veracrypt', '--pim', PIM, '--hash', 'argon2'],
      'vc-argon2',
    );
    const info = await infoJson(file, ['--type', 'veracrypt', '--hash', 'argon2', '--pim', PIM]);
    expect(info).toMatchObject({
      format: 'veracrypt',
      dataOffset: 131072,
      kdf: { type: 'argon2id', memoryKiB: 65536, iterations: 3, parallelism: 1 },
    });
    const text = await vault(['info', file, ...secretArgs, '--type', 'veracrypt', '--pim', PIM], {
      stdin: `${PASSWORD}\n`,
    });
    expect(text.stdout).toMatch(/kdf:\s+Argon2id \(64 MiB, t=3, p=1\)/);
    await independentlyReadable(file, written.masterKey.toString('hex'), info, 'vc-argon2');
  });

  it('TrueCrypt (made by tcplay on a loop device, filled through --no-filesystem): mount, remount; independent decryption', async () => {
    const image = await ext4Image('truecrypt', 8 << 20);
    const file = join(dir, 'disk.tc');
    await writeFile(file, Buffer.alloc(0));
    await truncate(file, 10 << 20);
    await tcplayCreate(file, 'SHA512');
    expect(loopDevices().some((entry) => entry.backingFile === file)).toBe(false);
    const exposed = await vault(['mount', file, '--no-filesystem', '--type', 'truecrypt', ...secretArgs], {
      stdin: `${PASSWORD}\n`,
    });
    expect(exposed.code, exposed.stderr).toBe(0);
    expect(
      (
        await sh('dd', [
          `if=${image}`,
          `of=${exposed.stdout.trim()}`,
          'bs=1M',
          'conv=fsync,notrunc',
          'status=none',
        ])
      ).code,
    ).toBe(0);
    expect((await vault(['dismount', file])).code).toBe(0);
    await mountReadWrite(file, [], ['--type', 'truecrypt'], 'truecrypt');
    const info = await infoJson(file, ['--type', 'truecrypt']);
    expect(info).toMatchObject({
      format: 'truecrypt',
      kdf: { type: 'pbkdf2', hash: 'sha512', iterations: 1000 },
    });
    const dump = await sh('sh', [
      '-c',
      `printf '%s' "$0" | cryptsetup tcryptDump -q --dump-volume-key --hash sha512 "$1"`,
      PASSWORD,
      file,
    ]);
    await independentlyReadable(file, dumpedKey(dump.stdout), info, 'truecrypt');
  });

  it('TrueCrypt with Whirlpool (tcplay), without --openssl-legacy-provider (the addon): mount, remount; cryptsetup agrees; independent decryption', async () => {
    const image = await ext4Image('whirlpool', 4 << 20);
    const file = join(dir, 'whirlpool.tc');
    await writeFile(file, Buffer.alloc(0));
    await truncate(file, 6 << 20);
    await tcplayCreate(file, 'whirlpool');
    // node:crypto has no Whirlpool without the legacy provider; the addon's private OpenSSL context has.
    const args = ['info', file, '--json', '--type', 'truecrypt', ...secretArgs];
    for (const NODE_OPTIONS of ['', '--openssl-legacy-provider']) {
      const opened = await vault(args, { stdin: `${PASSWORD}\n`, env: { NODE_OPTIONS } });
      expect(opened.code, opened.stderr).toBe(0);
      expect(JSON.parse(opened.stdout)).toMatchObject({
        format: 'truecrypt',
        kdf: { hash: 'whirlpool', iterations: 1000 },
      });
    }
    const exposed = await vault(['mount', file, '--no-filesystem', '--type', 'truecrypt', ...secretArgs], {
      stdin: `${PASSWORD}\n`,
      env: { NODE_OPTIONS: '' },
    });
    expect(exposed.code, exposed.stderr).toBe(0);
    const copied = await sh('dd', [
      `if=${image}`,
      `of=${exposed.stdout.trim()}`,
      'bs=1M',
      'conv=fsync,notrunc',
      'status=none',
    ]);
    expect(copied.code, copied.stderr).toBe(0);
    expect((await vault(['dismount', file])).code).toBe(0);
    await mountReadWrite(file, [], ['--type', 'truecrypt', '--hash', 'whirlpool'], 'whirlpool');
    const info = await infoJson(file, ['--type', 'truecrypt']);
    const dump = await sh('sh', [
      '-c',
      `printf '%s' "$0" | cryptsetup tcryptDump -q --dump-volume-key --hash whirlpool "$1"`,
      PASSWORD,
      file,
    ]);
    await independentlyReadable(file, dumpedKey(dump.stdout), info, 'whirlpool');
  });

  it('TrueCrypt with Serpent (tcplay SERPENT-256-XTS): exit 3, and the hint says which ciphers and KDFs vault opens', async () => {
    const file = join(dir, 'serpent.tc');
    await writeFile(file, Buffer.alloc(0));
    await truncate(file, 4 << 20);
    await tcplayCreate(file, 'SHA512', undefined, 'SERPENT-256-XTS');
    const before = readFileSync(file);
    const refused = await vault(['info', file, '--type', 'truecrypt', ...secretArgs], {
      stdin: `${PASSWORD}\n`,
    });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/vault: error: cannot unlock the volume as TrueCrypt/);
    expect(refused.stderr).toMatch(
      /vault: hint: .*VeraCrypt\/TrueCrypt volumes encrypted with AES \(PBKDF2 with SHA-512, SHA-256, BLAKE2s, Whirlpool, RIPEMD-160, SHA-1, or VeraCrypt's Argon2id; not Serpent, Twofish/,
    );
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it('TrueCrypt hidden volume (tcplay -g): opened by its own password; --protect-hidden refuses writes into it', async () => {
    const image = await ext4Image('hidden', 2 << 20, '1024');
    const file = join(dir, 'hidden.tc');
    await writeFile(file, Buffer.alloc(0));
    await truncate(file, 8 << 20);
    await tcplayCreate(file, 'SHA512', { password: 'hidden secret', size: '2M' });
    const hiddenSecret = ['--password-stdin', '--non-interactive'];
    const hiddenInfo = await vault(['info', file, '--json', '--type', 'truecrypt', ...hiddenSecret], {
      stdin: 'hidden secret\n',
    });
    expect(hiddenInfo.code, hiddenInfo.stderr).toBe(0);
    const info = JSON.parse(hiddenInfo.stdout) as { kind: string; dataOffset: number; dataSize: number };
    expect(info).toMatchObject({ kind: 'hidden', dataSize: 2 << 20 });
    const dump = await sh('sh', [
      '-c',
      `printf '%s' "$0" | cryptsetup tcryptDump --tcrypt-hidden --hash sha512 "$1"`,
      'hidden secret',
      file,
    ]);
    expect(dump.stdout).toMatch(new RegExp(`MK offset:\\s+${info.dataOffset}`));

    const exposed = await vault(['mount', file, '--no-filesystem', '--type', 'truecrypt', ...hiddenSecret], {
      stdin: 'hidden secret\n',
    });
    expect(exposed.code, exposed.stderr).toBe(0);
    expect(
      (
        await sh('dd', [
          `if=${image}`,
          `of=${exposed.stdout.trim()}`,
          'bs=1M',
          'conv=fsync,notrunc',
          'status=none',
        ])
      ).code,
    ).toBe(0);
    expect((await vault(['dismount', file])).code).toBe(0);

    // The outer volume with the hidden one protected: a write into the hidden area fails, the rest works.
    const outer = await vault(
      ['mount', file, '--no-filesystem', '--type', 'truecrypt', '--protect-hidden', ...secretArgs],
      { stdin: `${PASSWORD}\nhidden secret\n` },
    );
    expect(outer.code, outer.stderr).toBe(0);
    const block = outer.stdout.trim();
    expect(
      (
        await sh('dd', [
          'if=/dev/zero',
          `of=${block}`,
          'bs=4096',
          'count=4',
          'conv=fsync,notrunc',
          'status=none',
        ])
      ).code,
    ).toBe(0);
    const intoHidden = (info.dataOffset - 131072) / 4096;
    const refused = await sh('dd', [
      'if=/dev/zero',
      `of=${block}`,
      'bs=4096',
      'count=4',
      `seek=${intoHidden}`,
      'conv=fsync,notrunc',
      'status=none',
    ]);
    expect(refused.code).not.toBe(0);
    const listed = JSON.parse((await vault(['list', '--json'])).stdout) as Array<{
      file: string;
      hiddenProtection: string | null;
    }>;
    expect(listed.find((entry) => entry.file === file)?.hiddenProtection).toBe('tripped');
    expect((await vault(['dismount', file])).code).toBe(0);

    const mountpoint = join(dir, 'hidden.mnt');
    await mkdir(mountpoint);
    const mounted = await vault(['mount', file, mountpoint, '-r', ...hiddenSecret], {
      stdin: 'hidden secret\n',
    });
    expect(mounted.code, mounted.stderr).toBe(0);
    expect(readFileSync(join(mountpoint, 'hello.txt'), 'utf8')).toBe('hello from hidden\n');
    expect((await vault(['dismount', file])).code).toBe(0);
  });

  it('a wrong secret is exit 3 and leaves no mount, loop device or daemon; a hint names what vault opens', async () => {
    const file = join(dir, 'wrong.luks');
    await writeFile(file, Buffer.alloc(0));
    await truncate(file, 20 << 20);
    writeFileSync(join(dir, 'pass'), PASSWORD);
    expect(
      (
        await sh('cryptsetup', [
          'luksFormat',
          '-q',
          '--type',
          'luks2',
          ...FAST_PBKDF2,
          '--key-file',
          join(dir, 'pass'),
          file,
        ])
      ).code,
    ).toBe(0);
    const mountpoint = join(dir, 'wrong.mnt');
    await mkdir(mountpoint);
    const before = readFileSync(file);
    const refused = await vault(['mount', file, mountpoint, ...secretArgs], { stdin: 'not it\n' });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/cannot unlock the volume as LUKS/);
    expect(refused.stderr).toMatch(/vault: hint: .*LUKS1\/LUKS2/);
    expect(isMounted(mountpoint)).toBe(false);
    expect(loopDevices().some((entry) => entry.backingFile.startsWith(dir))).toBe(false);
    expect(readFileSync(file).equals(before)).toBe(true);
    const badType = await vault(['info', file, '--type', 'bitlocker', ...secretArgs], {
      stdin: `${PASSWORD}\n`,
    });
    expect(badType.code).toBe(2);
    expect(badType.stderr).toMatch(/--type is one of vault, luks, veracrypt, truecrypt/);
  });
});

const USER = 'vaulttest';

/** Runs a command as the test user (created when missing, as user-mount.test.ts does); stdin optional. */
function asUser(args: string[], stdin?: string) {
  const command = stdin === undefined ? args : ['sh', '-c', `printf '%s\\n' "$0" | "$@"`, stdin, ...args];
  return sh('runuser', ['-u', USER, '--', ...command], 120_000);
}

describe.skipIf(lacks('mount', 'cryptsetup', 'tcplay', 'fuse2fs'))(
  'a LUKS2 volume mounted without root (--user)',
  () => {
    it('a user mounts, writes, dismounts and mounts again a LUKS2 container: no loop device, no device-mapper', async () => {
      if ((await sh('id', ['-u', USER])).code !== 0) await sh('useradd', ['-m', USER]);
      const uid = Number((await sh('id', ['-u', USER])).stdout.trim());
      const gid = Number((await sh('id', ['-g', USER])).stdout.trim());
      const fuseMode = statSync('/dev/fuse').mode & 0o777;
      chmodSync(dir, 0o755);
      const image = await ext4Image('userluks', 24 << 20);
      const file = join(dir, 'user.luks2');
      writeFileSync(file, readFileSync(image));
      await truncate(file, 40 << 20);
      writeFileSync(join(dir, 'pass'), PASSWORD);
      const encrypted = await sh('cryptsetup', [
        'reencrypt',
        '-q',
        '--encrypt',
        '--type',
        'luks2',
        ...FAST_PBKDF2,
        '--reduce-device-size',
        '16M',
        '--key-file',
        join(dir, 'pass'),
        file,
      ]);
      expect(encrypted.code, encrypted.stderr).toBe(0);
      chownSync(file, uid, gid);
      const mountpoint = join(dir, 'user.mnt');
      await mkdir(mountpoint);
      chownSync(mountpoint, uid, gid);
      chmodSync('/dev/fuse', 0o666);
      try {
        const vaultArgs = (args: string[]) => [process.execPath, VAULT_BIN, ...args];
        const mounted = await asUser(
          vaultArgs(['mount', file, mountpoint, '--user', ...secretArgs]),
          PASSWORD,
        );
        expect(mounted.code, mounted.stderr).toBe(0);
        expect((await asUser(['cat', join(mountpoint, 'hello.txt')])).stdout).toBe('hello from userluks\n');
        expect((await asUser(['sh', '-c', `echo by the user > ${mountpoint}/mine.txt && sync`])).code).toBe(
          0,
        );
        expect(loopDevices().some((entry) => entry.backingFile.startsWith(dir))).toBe(false);
        expect((await asUser(vaultArgs(['dismount', file]))).code).toBe(0);
        const again = await asUser(
          vaultArgs(['mount', file, mountpoint, '--user', '--type', 'luks', ...secretArgs]),
          PASSWORD,
        );
        expect(again.code, again.stderr).toBe(0);
        expect((await asUser(['cat', join(mountpoint, 'mine.txt')])).stdout).toBe('by the user\n');
        expect((await asUser(vaultArgs(['dismount', file]))).code).toBe(0);
      } finally {
        chmodSync('/dev/fuse', fuseMode);
      }
      expect(isMounted(mountpoint)).toBe(false);
    });
  },
);
