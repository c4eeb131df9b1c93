// vault mount --idle-dismount (VeraCrypt's auto-dismount) with the real daemon, FUSE, loop device and
// ext4: a vault stays mounted while I/O reaches it, dismounts itself once none did for the duration and
// leaves nothing behind; a busy filesystem stays mounted and goes once it is let go; bad durations are
// usage errors.
import { spawn } from 'node:child_process';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import {
  FAST_COST,
  isMounted,
  lacks,
  leftovers,
  listedVault,
  RUN_DIR,
  stateIdOf,
  useTempDir,
  vault,
  vaultOk,
  waitFor,
} from './helpers.js';

let dir = '';
useTempDir('vault-idle-', (made) => {
  dir = made;
});

const SECRET = () => ['-k', join(dir, 'key'), '--non-interactive'];
const logOf = (file: string) => readFileSync(`${RUN_DIR}/log/${stateIdOf(file)}.log`, 'utf8');
const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

/** Writes `text` to `path` and fsyncs it, so the write reaches the vault now (not at writeback). */
function writeThrough(path: string, text: string): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(lacks('mount'))('vault mount --idle-dismount', () => {
  let file = '';
  beforeAll(async () => {
    file = join(dir, 'idle.vol');
    await vaultOk(['keyfile', 'generate', join(dir, 'key')]);
    await vaultOk(['create', '16M', file, ...SECRET(), '--quick']);
  });

  it('stays mounted while I/O happens, dismounts after 2 s without, and leaves nothing behind', async () => {
    const mountpoint = join(dir, 'mnt');
    mkdirSync(mountpoint, { recursive: true });
    await vaultOk(['mount', file, mountpoint, ...SECRET(), '--idle-dismount', '2s']);
    expect((await listedVault(file)) as unknown).toMatchObject({ idleDismountSeconds: 2, state: 'ok' });
    // 6 s of writes, one every 300 ms: three times the idle time, never 2 s without a request.
    const started = Date.now();
    let n = 0;
    // When the last write returned (fsync'd), not when the loop ends 300 ms later: the idle time
    // counts from the last request the daemon saw.
    let lastWrite = started;
    while (Date.now() - started < 6000) {
      writeThrough(join(mountpoint, `f${n % 5}.txt`), `write ${n}`);
      lastWrite = Date.now();
      n += 1;
      await sleep(300);
    }
    expect(isMounted(mountpoint)).toBe(true);
    await waitFor(() => !isMounted(mountpoint), 'the idle dismount', 30_000);
    expect(Date.now() - lastWrite).toBeGreaterThanOrEqual(1900);
    await waitFor(() => leftovers(dir).length === 0, `no leftovers (${leftovers(dir).join(', ')})`, 15_000);
    expect(leftovers(dir)).toEqual([]);
    expect(await listedVault(file)).toBeUndefined();
    // A clean dismount: everything written is there at the next mount.
    await vaultOk(['mount', file, mountpoint, ...SECRET()]);
    try {
      expect(readFileSync(join(mountpoint, `f${(n - 1) % 5}.txt`), 'utf8')).toBe(`write ${n - 1}`);
      expect(logOf(file)).toMatch(/no I\/O for \d+ s \(--idle-dismount\): dismounted/);
    } finally {
      await vaultOk(['dismount', mountpoint]);
    }
    expect(leftovers(dir)).toEqual([]);
  });

  it('a busy filesystem (a shell inside it) stays mounted; it goes once that process exits', async () => {
    const mountpoint = join(dir, 'busy');
    mkdirSync(mountpoint, { recursive: true });
    // The log is named by the file's device and inode, which a new file can reuse: only this mount's lines.
    const logBefore = (() => {
      try {
        return logOf(file).length;
      } catch {
        return 0;
      }
    })();
    const thisMount = () => logOf(file).slice(logBefore);
    await vaultOk(['mount', file, mountpoint, ...SECRET(), '--idle-dismount', '2s']);
    const holder = spawn('sleep', ['120'], { cwd: mountpoint, stdio: 'ignore' });
    try {
      await waitFor(() => /staying mounted/.test(thisMount()), 'the busy note in the daemon log', 20_000);
      expect(thisMount()).toMatch(new RegExp(`${mountpoint} is in use by sleep \\(pid ${holder.pid}\\)`));
      expect(isMounted(mountpoint)).toBe(true);
      expect((await listedVault(file))?.state).toBe('ok');
      const list = await vault(['list']);
      expect(list.stdout).toMatch(new RegExp(`${file} .* ok, idle dismount 2s\n`));
      const info = await vaultOk(['info', file, ...SECRET()]);
      expect(info.stdout).toContain(
        `mounted:        yes, at ${mountpoint} (ext4, read-write, dismounted after 2s without I/O)`,
      );
    } finally {
      holder.kill('SIGKILL');
    }
    await waitFor(() => !isMounted(mountpoint), 'the dismount once the shell left', 20_000);
    await waitFor(() => leftovers(dir).length === 0, `no leftovers (${leftovers(dir).join(', ')})`, 15_000);
  });

  it.each([
    ['10', 'not a duration: "10"'],
    ['0s', '"0s" is too short'],
    ['5 minutes', 'not a duration: "5 minutes"'],
    ['31d', '"31d" is too long'],
  ])('refuses --idle-dismount %j with exit code 2 and a hint, mounting nothing', async (value, message) => {
    const mountpoint = join(dir, 'never');
    mkdirSync(mountpoint, { recursive: true });
    const result = await vault([
      'mount',
      file,
      mountpoint,
      ...SECRET(),
      '--cost',
      FAST_COST,
      '--idle-dismount',
      value,
    ]);
    expect(result.code).toBe(EXIT_CODES.USAGE);
    expect(result.stderr).toBe(
      `vault: error: --idle-dismount: ${message}\nvault: hint: write a duration like 30s, 10m, 1h or 1h30m (s, m, h, d; from 1s to 30d)\n`,
    );
    expect(isMounted(mountpoint)).toBe(false);
    expect(leftovers(dir)).toEqual([]);
  });
});
