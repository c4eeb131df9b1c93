// What a mount does without running programs (src/host/syscalls.ts, src/host/mounts.ts): mount(8)'s
// option list split into mount(2) flags and data, and ext2/3/4 told apart from the superblock as blkid
// tells them apart. The system calls themselves run as root in test/e2e/host-syscalls.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { filesystemRecord, MOUNTABLE_TYPES } from '../../src/host/filesystems.js';
import { extFilesystemType, mountOptions } from '../../src/host/mounts.js';
import { splitMountOptions } from '../../src/host/syscalls.js';

const MS_RDONLY = 0x1;
const MS_NOSUID = 0x2;
const MS_NODEV = 0x4;
const MS_NOATIME = 0x400;
const MS_RELATIME = 0x200000;
const MS_LAZYTIME = 0x2000000;

describe('mount(8) options as mount(2) flags and data', () => {
  it('splits the lists vault makes', () => {
    expect(splitMountOptions('rw,nosuid,nodev')).toEqual({ flags: MS_NOSUID | MS_NODEV, data: '' });
    expect(splitMountOptions('ro,noload,nosuid,nodev')).toEqual({
      flags: MS_RDONLY | MS_NOSUID | MS_NODEV,
      data: 'noload',
    });
    expect(splitMountOptions('rw,uid=1000,gid=1001,umask=077,nosuid,nodev')).toEqual({
      flags: MS_NOSUID | MS_NODEV,
      data: 'uid=1000,gid=1001,umask=077',
    });
    expect(splitMountOptions('ro,rescue=nologreplay,nosuid,nodev')).toEqual({
      flags: MS_RDONLY | MS_NOSUID | MS_NODEV,
      data: 'rescue=nologreplay',
    });
    expect(splitMountOptions('rw,noatime,commit=30,lazytime,nosuid,nodev')).toEqual({
      flags: MS_NOATIME | MS_LAZYTIME | MS_NOSUID | MS_NODEV,
      data: 'commit=30',
    });
  });

  it('a later option undoes an earlier one, as in mount(8)', () => {
    expect(splitMountOptions('ro,rw')?.flags).toBe(0);
    expect(splitMountOptions('relatime,norelatime,nodev')?.flags).toBe(MS_NODEV);
    expect(splitMountOptions('nosuid,suid,nosuid')?.flags).toBe(MS_NOSUID);
  });

  it('a name inherited by every object is data, not a flag', () => {
    expect(splitMountOptions('constructor,tostring,nodev')).toEqual({
      flags: MS_NODEV,
      data: 'constructor,tostring',
    });
    expect(splitMountOptions('__proto__')).toEqual({ flags: 0, data: '__proto__' });
  });

  it('leaves lists with options only mount(8) understands to mount(8)', () => {
    for (const list of [
      'rw,noauto,nosuid,nodev',
      'rw,nofail',
      'rw,x-systemd.automount',
      'rw,user',
      'defaults',
      'rw,loop',
      'rw,comment=x',
      'rw,context="system_u:object_r:tmp_t"',
    ]) {
      expect(splitMountOptions(list), list).toBeNull();
    }
  });

  it('every list the registry makes keeps nosuid and nodev as flags, never as data', () => {
    const owner = { uid: 1000, gid: 1001 };
    for (const type of MOUNTABLE_TYPES) {
      const record = filesystemRecord(type);
      if (!record) throw new Error(type);
      for (const readOnly of [false, true]) {
        const list = mountOptions(record, { readOnly, owner, extra: ['noatime'] });
        const split = splitMountOptions(list);
        expect(split, `${type} ${list}`).not.toBeNull();
        expect((split?.flags ?? 0) & (MS_NOSUID | MS_NODEV), list).toBe(MS_NOSUID | MS_NODEV);
        expect((split?.flags ?? 0) & MS_RDONLY, list).toBe(readOnly ? MS_RDONLY : 0);
        expect((split?.flags ?? 0) & MS_NOATIME, list).toBe(MS_NOATIME);
        expect(split?.data.split(','), list).not.toEqual(expect.arrayContaining(['nosuid']));
        expect(split?.data.split(','), list).not.toEqual(expect.arrayContaining(['nodev']));
        expect(split?.data.split(','), list).not.toEqual(expect.arrayContaining(['ro']));
        expect((split?.flags ?? 0) & MS_RELATIME).toBe(0);
      }
    }
  });
});

describe('ext2, ext3 and ext4 from the superblock', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vault-sniff-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A fresh image made by mke2fs with `args`, and what blkid calls it. */
  function image(name: string, args: string[]): { head: Uint8Array; blkid: string } {
    const file = join(dir, name);
    execFileSync('truncate', ['-s', '8M', file]);
    execFileSync('mke2fs', ['-q', '-F', ...args, file], { env: { ...process.env, MKE2FS_CONFIG: '' } });
    const blkid = execFileSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', file], {
      encoding: 'utf8',
    }).trim();
    return { head: readFileSync(file).subarray(0, 2048), blkid };
  }

  it.each([
    ['ext2', ['-t', 'ext2']],
    ['ext3', ['-t', 'ext3']],
    ['ext4', ['-t', 'ext4']],
    ['ext4 without a journal', ['-t', 'ext4', '-O', '^has_journal']],
    ['ext2 with extents', ['-t', 'ext2', '-O', 'extent']],
    ['ext3 with dir_index only', ['-t', 'ext3', '-O', 'dir_index']],
  ])('%s: the same name as blkid', (name, args) => {
    const made = image(`${name.replace(/ /g, '-')}.img`, args);
    expect(extFilesystemType(made.head)).toBe(made.blkid);
  });

  it('anything else is left to blkid', () => {
    const made = image('ext4.img', ['-t', 'ext4']);
    const head = Buffer.from(made.head);
    expect(extFilesystemType(head.subarray(0, 2047))).toBeNull();
    const noMagic = Buffer.from(head);
    noMagic.writeUInt16LE(0, 1024 + 0x38);
    expect(extFilesystemType(noMagic)).toBeNull();
    const journalDevice = Buffer.from(head);
    journalDevice.writeUInt32LE(journalDevice.readUInt32LE(1024 + 0x60) | 0x8, 1024 + 0x60);
    expect(extFilesystemType(journalDevice)).toBeNull();
    const testFilesystem = Buffer.from(head);
    testFilesystem.writeUInt32LE(0x4, 1024 + 0x160);
    expect(extFilesystemType(testFilesystem)).toBeNull();
    expect(extFilesystemType(new Uint8Array(4096))).toBeNull();
  });
});
