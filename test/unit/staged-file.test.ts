// One staged file for every new file vault writes (src/container/staged-file.ts): built under a hidden
// temporary name, published in one step, never overwriting unasked, reaped when a killed run left it.
import { spawnSync } from 'node:child_process';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { abortIfAsked, checkFreeSpace, checkNewFile, stageFile } from '../../src/container/staged-file.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vault-staged-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('a staged file', () => {
  it('is written under a hidden name next to the target and published by link; nothing else is left', async () => {
    const target = join(dir, 'new.vol');
    const staged = await stageFile(target, { force: false });
    expect(staged.temporary).toMatch(
      new RegExp(`^${dir}/\\.new\\.vol\\.vault-tmp-${process.pid}-[0-9a-f]{8}$`),
    );
    writeFileSync(staged.temporary, 'complete');
    await staged.publish();
    expect(readFileSync(target, 'utf8')).toBe('complete');
    expect(readdirSync(dir)).toEqual(['new.vol']);
  });

  it('never overwrites a target that appeared meanwhile without force; with force it replaces it whole', async () => {
    const target = join(dir, 'raced.vol');
    const staged = await stageFile(target, { force: false, existsHint: 'a backup is never overwritten' });
    writeFileSync(staged.temporary, 'ours');
    writeFileSync(target, 'theirs');
    await expect(staged.publish()).rejects.toMatchObject({
      code: 'EXISTS',
      message: `file exists: ${target}`,
      hint: 'a backup is never overwritten',
    });
    expect(readFileSync(target, 'utf8')).toBe('theirs');
    await staged.discard();
    expect(readdirSync(dir)).toEqual(['raced.vol']);

    const forced = await stageFile(target, { force: true });
    writeFileSync(forced.temporary, 'replacement');
    await forced.publish();
    expect(readFileSync(target, 'utf8')).toBe('replacement');
    expect(readdirSync(dir)).toEqual(['raced.vol']);
  });

  it('removes the temporaries of runs that were killed, and only those', async () => {
    const target = join(dir, 'x.vol');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    const deadPid = Number(dead.stdout);
    writeFileSync(join(dir, `.x.vol.vault-tmp-${deadPid}-00000000`), 'abandoned');
    writeFileSync(join(dir, `.x.vol.vault-tmp-${process.pid}-11111111`), 'in progress');
    writeFileSync(join(dir, `.y.vol.vault-tmp-${deadPid}-22222222`), 'another target');
    await stageFile(target, { force: false });
    expect(readdirSync(dir).sort()).toEqual(
      [`.x.vol.vault-tmp-${process.pid}-11111111`, `.y.vol.vault-tmp-${deadPid}-22222222`].sort(),
    );
  });

  it('is refused for a directory, a symlink or an existing file, before anything is created', async () => {
    writeFileSync(join(dir, 'file'), 'precious');
    symlinkSync(join(dir, 'file'), join(dir, 'link'));
    await expect(stageFile(dir, { force: true })).rejects.toMatchObject({ code: 'USAGE' });
    await expect(checkNewFile(join(dir, 'link'), true)).rejects.toThrow(
      /not a regular file: .* \(a symbolic link\)/,
    );
    await expect(stageFile(join(dir, 'file'), { force: false })).rejects.toMatchObject({ code: 'EXISTS' });
    expect(readdirSync(dir).sort()).toEqual(['file', 'link']);
    expect(readFileSync(join(dir, 'file'), 'utf8')).toBe('precious');
  });

  it('checks free space (the replaced file counts) and Ctrl-C the same way everywhere', async () => {
    await expect(checkFreeSpace(dir, 2 ** 60, 0, 'the vault')).rejects.toMatchObject({
      code: 'IO',
      message: expect.stringMatching(/^not enough free space: the vault needs .* GiB, .* has .* GiB free$/),
    });
    await expect(
      stageFile(join(dir, 'big'), { force: false, space: { bytes: 2 ** 60, what: 'the vault' } }),
    ).rejects.toMatchObject({ code: 'IO' });
    await expect(checkFreeSpace(dir, 4096, 0, 'x')).resolves.toBeUndefined();
    const controller = new AbortController();
    expect(() => abortIfAsked(controller.signal, 'nothing changed')).not.toThrow();
    controller.abort();
    expect(() => abortIfAsked(controller.signal, 'nothing changed')).toThrow(
      expect.objectContaining({ code: 'INTERRUPTED', message: 'interrupted; nothing changed' }),
    );
  });
});

describe('the checks before a new file', () => {
  it('names what is in the way: a device is never replaced, even with force', async () => {
    await expect(checkNewFile('/dev/null', true)).rejects.toMatchObject({
      code: 'USAGE',
      message: 'not a regular file: /dev/null (a character device)',
    });
    await expect(checkNewFile(dir, false)).rejects.toMatchObject({ message: `is a directory: ${dir}` });
    expect(await checkNewFile(join(dir, 'absent'), false)).toBeNull();
    writeFileSync(join(dir, 'there'), 'x');
    expect((await checkNewFile(join(dir, 'there'), true))?.size).toBe(1);
  });

  it('an existing target: the CLI hint by default, the caller hint when given', async () => {
    writeFileSync(join(dir, 'there'), 'x');
    await expect(checkNewFile(join(dir, 'there'), false)).rejects.toMatchObject({
      code: 'EXISTS',
      reason: 'exists',
      hint: 'choose another name',
    });
    await expect(checkNewFile(join(dir, 'there'), false, 'never')).rejects.toMatchObject({
      reason: 'exists-never-replaced',
      hint: 'never',
    });
  });

  it('the file being replaced counts as free space', async () => {
    const huge = 2 ** 50;
    await expect(checkFreeSpace(dir, huge, 0, 'x')).rejects.toMatchObject({ code: 'IO' });
    await expect(checkFreeSpace(dir, huge, huge, 'x')).resolves.toBeUndefined();
    await expect(checkFreeSpace(join(dir, 'missing', 'dir'), 1, 0, 'x')).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('temporaries whose name holds no live pid are reaped; malformed names are left alone', async () => {
    const target = join(dir, 'x.vol');
    for (const name of ['.x.vol.vault-tmp-abc-0', '.x.vol.vault-tmp-0-0', '.x.vol.vault-tmp--1-0']) {
      writeFileSync(join(dir, name), '');
    }
    await stageFile(target, { force: false });
    expect(readdirSync(dir).sort()).toEqual([
      '.x.vol.vault-tmp--1-0',
      '.x.vol.vault-tmp-0-0',
      '.x.vol.vault-tmp-abc-0',
    ]);
  });
});

describe('more of what is in the way, and the space', () => {
  it('a fifo and a socket are named and never replaced', async () => {
    const fifo = join(dir, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    await expect(checkNewFile(fifo, true)).rejects.toMatchObject({
      message: `not a regular file: ${fifo} (a fifo)`,
      hint: expect.stringMatching(/never replaces devices, fifos, sockets or symlinks/),
    });
    const socket = join(dir, 'socket');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    try {
      await expect(checkNewFile(socket, true)).rejects.toMatchObject({
        message: `not a regular file: ${socket} (a socket)`,
      });
    } finally {
      server.close();
    }
    await expect(checkNewFile(dir, true)).rejects.toMatchObject({ hint: 'name a file to create' });
  });

  it('half the free space fits; the message counts in GiB', async () => {
    const fs = statfsSync(dir);
    await expect(
      checkFreeSpace(dir, Math.floor((fs.bavail * fs.bsize) / 2), 0, 'x'),
    ).resolves.toBeUndefined();
    await expect(checkFreeSpace(dir, 2 ** 60, 0, 'the vault')).rejects.toMatchObject({
      message: expect.stringMatching(/^not enough free space: the vault needs 1073741824\.0 GiB, /),
      hint: 'choose a smaller size or another disk',
    });
  });

  it('no signal is no interruption; the outcome and hint are said', () => {
    expect(() => abortIfAsked(undefined, 'x')).not.toThrow();
    const controller = new AbortController();
    controller.abort();
    expect(() => abortIfAsked(controller.signal, 'nothing changed')).toThrow(
      expect.objectContaining({ hint: 'run the command again' }),
    );
  });

  it('in a directory that does not exist: staged, then publish fails as a missing path, not as EXISTS', async () => {
    const staged = await stageFile(join(dir, 'missing', 'x.vol'), { force: false });
    await expect(staged.publish()).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await staged.discard();
  });
});
