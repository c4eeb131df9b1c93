// The filesystem registry (src/host/filesystems.ts): what it says of each filesystem, the option list
// of every mount, and the checks create makes before writing anything.
import { describe, expect, it } from 'vitest';
import {
  CREATABLE_TYPES,
  checkCanMake,
  creatableFilesystem,
  type FilesystemRecord,
  filesystemRecord,
  HIDDEN_OUTER_TYPES,
  kernelHasDriver,
  MOUNTABLE_TYPES,
  USER_MOUNTABLE_TYPES,
} from '../../src/host/filesystems.js';
import { mountOptions } from '../../src/host/mounts.js';

const owner = { uid: 1000, gid: 1001 };
const record = (name: string): FilesystemRecord => {
  const found = filesystemRecord(name);
  if (!found) throw new Error(`no record for ${name}`);
  return found;
};

describe('the filesystem registry', () => {
  it('lists what vault mounts, makes, mounts without root and can hide a volume behind', () => {
    expect(MOUNTABLE_TYPES).toEqual(['ext2', 'ext3', 'ext4', 'exfat', 'vfat', 'xfs', 'btrfs', 'ntfs']);
    expect(CREATABLE_TYPES).toEqual(['ext4', 'exfat', 'vfat', 'xfs', 'btrfs', 'ntfs']);
    expect(USER_MOUNTABLE_TYPES).toEqual(['ext2', 'ext3', 'ext4']);
    expect(HIDDEN_OUTER_TYPES).toEqual(['exfat', 'vfat']);
    expect(filesystemRecord('zfs')).toBeUndefined();
  });

  it('every mount ends in nosuid,nodev; read-only ones never replay a journal or log', () => {
    const ro = { readOnly: true, owner };
    expect(mountOptions(record('ext4'), ro)).toBe('ro,noload,nosuid,nodev');
    expect(mountOptions(record('ext3'), ro)).toBe('ro,noload,nosuid,nodev');
    expect(mountOptions(record('xfs'), ro)).toBe('ro,norecovery,nosuid,nodev');
    expect(mountOptions(record('btrfs'), ro)).toBe('ro,rescue=nologreplay,nosuid,nodev');
    expect(mountOptions(record('ext4'), { readOnly: false, owner, extra: ['noatime'] })).toBe(
      'rw,noatime,nosuid,nodev',
    );
  });

  it('filesystems without owners of their own belong to the owner, umask 077', () => {
    for (const name of ['vfat', 'exfat', 'ntfs']) {
      expect(mountOptions(record(name), { readOnly: false, owner })).toBe(
        'rw,uid=1000,gid=1001,umask=077,nosuid,nodev',
      );
    }
    for (const name of ['ext4', 'xfs', 'btrfs']) {
      expect(mountOptions(record(name), { readOnly: false, owner })).toBe('rw,nosuid,nodev');
    }
  });

  it('xfs gets its root directory owner and mode 0700 from a protofile', () => {
    const xfs = record('xfs');
    expect(xfs.mkfs?.input?.(owner)).toEqual({ name: 'proto', text: 'vault\n0 0\nd--700 1000 1001\n$\n' });
    expect(xfs.mkfs?.args('/b', owner, '/w')).toEqual(['-q', '-f', '-K', '-p', '/w/proto', '/b']);
    expect(record('ext4').mkfs?.args('/b', owner, '/w')).toContain('nodiscard,root_owner=1000:1001');
  });

  it('create refuses, before writing, an unknown filesystem, a size too small and one no driver here mounts', () => {
    expect(() => creatableFilesystem('ext3')).toThrow(/unknown filesystem "ext3"/);
    expect(() => checkCanMake(record('xfs'), 299 * 2 ** 20)).toThrow(
      /xfs needs a volume of at least 300 MiB/,
    );
    const nowhere: FilesystemRecord = {
      name: 'nosuchfs',
      mkfs: { tool: 'true', package: 'coreutils', args: () => [] },
      privateRoot: 'mkfs',
      ownerOptions: () => [],
      readOnlyOptions: [],
      hiddenOuter: false,
    };
    expect(kernelHasDriver(nowhere)).toBe(false);
    expect(() => checkCanMake(nowhere, 2 ** 30)).toThrow(
      /this kernel has no nosuchfs driver: a nosuchfs vault could not be mounted here/,
    );
    expect(kernelHasDriver(record('ext4'))).toBe(true);
  });
});
