// kill -9 of the mount daemon in the middle of a write workload (issue 7). A writer process creates
// files inside the mounted vault, fsyncs each file and its directory, and reports every fsync that
// returned. Then the daemon dies; `vault dismount` cleans up; the journal is replayed; `e2fsck -fn` must
// find the filesystem clean, and every file whose fsync returned must read back intact.
// 10 rounds in `npm test`, 100 with VAULT_SOAK=1 (`npm run soak`).
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  FAST_COST,
  lacks,
  leftovers,
  listedVault,
  sh,
  useSuiteDir,
  vault,
  vaultDaemons,
  waitFor,
} from './helpers.js';

const SOAK = process.env.VAULT_SOAK === '1';
const ROUNDS = SOAK ? 100 : 10;
const PASSWORD = `crash-rounds ${process.pid}`;
const secretArgs = ['--password-stdin', '--non-interactive', '--cost', FAST_COST];

/**
 * Deterministic file content: SHA-256 blocks of (name, counter), so a prefix of a longer pattern is the
 * shorter one. Plain JavaScript source, shared by the writer process and the checks here.
 */
const PATTERN_SOURCE = `function pattern(name, size) {
  const blocks = [];
  for (let counter = 0; blocks.length * 32 < size; counter++) {
    blocks.push(createHash('sha256').update(name + ':' + counter).digest());
  }
  return Buffer.concat(blocks).subarray(0, size);
}`;
const pattern = new Function('createHash', `${PATTERN_SOURCE}\nreturn pattern;`)(createHash) as (
  name: string,
  size: number,
) => Buffer;

/**
 * The writer, run as its own process (argv: directory, round). Per step: a new file of 4 KiB..256 KiB,
 * fsync it, fsync the directory, print "file <name> <size>"; every third step also append to a log
 * file, fsync it and print "log <name> <total length>". A line is printed only after its fsyncs returned.
 */
const WRITER = `
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
${PATTERN_SOURCE}
const [dir, round] = process.argv.slice(1);
const dirFd = fs.openSync(dir, 'r');
const logName = 'log-' + round + '.bin';
const logFd = fs.openSync(path.join(dir, logName), 'a');
let logLength = 0;
for (let step = 0; ; step++) {
  const name = 'r' + round + '-' + step + '.bin';
  const size = 4096 + Math.floor(Math.random() * 256 * 1024);
  const fd = fs.openSync(path.join(dir, name), 'wx');
  fs.writeSync(fd, pattern(name, size));
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.fsyncSync(dirFd);
  process.stdout.write('file ' + name + ' ' + size + '\\n');
  if (step % 3 === 0) {
    const more = 1 + Math.floor(Math.random() * 20000);
    fs.writeSync(logFd, pattern(logName, logLength + more).subarray(logLength));
    fs.fsyncSync(logFd);
    logLength += more;
    process.stdout.write('log ' + logName + ' ' + logLength + '\\n');
  }
}
`;

interface Durable {
  /** File name -> size for whole files; name -> at-least length for append-only logs. */
  files: Map<string, number>;
  logs: Map<string, number>;
}

function startWriter(
  dir: string,
  round: number,
  durable: Durable,
): { child: ChildProcess; lines: () => number; errors: () => string } {
  const child = spawn(process.execPath, ['-e', WRITER, dir, String(round)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let pending = '';
  let lines = 0;
  child.stdout?.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    const complete = pending.split('\n');
    pending = complete.pop() ?? '';
    for (const line of complete) {
      const [kind, name = '', size = '0'] = line.split(' ');
      if (kind === 'file') durable.files.set(name, Number(size));
      if (kind === 'log') durable.logs.set(name, Number(size));
      lines += 1;
    }
  });
  let errors = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    errors += chunk.toString('utf8');
  });
  return { child, lines: () => lines, errors: () => errors };
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolveExit) => {
    if (child.exitCode !== null || child.signalCode !== null) resolveExit();
    else child.once('exit', () => resolveExit());
  });
}

const randomDelay = (from: number, to: number) => from + Math.floor(Math.random() * (to - from));
const sleep = (ms: number) => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

describe.skipIf(lacks('mount'))('kill -9 of the daemon during writes', () => {
  let dir = '';
  useSuiteDir('vault-crash-', (made) => {
    dir = made;
  });

  it(`${ROUNDS} rounds: fsync'd files survive, e2fsck is clean after journal replay, nothing is left`, {
    timeout: ROUNDS * 60_000,
  }, async () => {
    const file = join(dir, 'crash.vol');
    const created = await vault(['create', '128M', file, ...secretArgs], { stdin: `${PASSWORD}\n` });
    expect(created.code, created.stderr).toBe(0);
    const mountpoint = join(dir, 'mnt');
    mkdirSync(mountpoint);
    const durable: Durable = { files: new Map(), logs: new Map() };
    let fsyncsConfirmed = 0;
    let lastWriterErrors = '';

    const verify = async (round: number): Promise<void> => {
      const mounted = await vault(['mount', file, mountpoint, ...secretArgs], { stdin: `${PASSWORD}\n` });
      expect(mounted.code, `round ${round}: ${mounted.stderr}`).toBe(0);
      // Collect every loss first, so a failure says which confirmed writes were lost and where they
      // stood in the round (the last ones before the kill, or older ones).
      const confirmed = [...durable.files.keys()];
      const lost: string[] = [];
      for (const [name, size] of durable.files) {
        let content: Buffer | null = null;
        try {
          content = readFileSync(join(mountpoint, name));
        } catch {}
        if (content === null) lost.push(`${name} missing`);
        else if (content.length !== size) lost.push(`${name} is ${content.length} bytes, not ${size}`);
        else if (!content.equals(pattern(name, size))) lost.push(`${name} has wrong content`);
      }
      for (const [name, length] of durable.logs) {
        let content: Buffer | null = null;
        try {
          content = readFileSync(join(mountpoint, name));
        } catch {}
        if (content === null || content.length < length) lost.push(`${name} shorter than ${length}`);
        else if (!content.subarray(0, length).equals(pattern(name, length)))
          lost.push(`${name} wrong content`);
      }
      expect(
        lost,
        `after round ${round}: ${confirmed.length} confirmed files, the last ${confirmed.slice(-3).join(' ')}; ` +
          `writer said: ${lastWriterErrors}`,
      ).toEqual([]);
      // Keep the volume from filling up: what was verified goes (the deletions are part of the next crash).
      for (const name of [...durable.files.keys(), ...durable.logs.keys()]) {
        await sh('rm', ['-f', join(mountpoint, name)]);
      }
      durable.files.clear();
      durable.logs.clear();
    };

    const fsck = async (round: number): Promise<void> => {
      const raw = await vault(['mount', file, '--no-filesystem', ...secretArgs], { stdin: `${PASSWORD}\n` });
      expect(raw.code, raw.stderr).toBe(0);
      const blockFile = raw.stdout.trim();
      try {
        // Replay the journal exactly as a mount would, and nothing else; then check everything, read-only.
        const replay = await sh('e2fsck', ['-E', 'journal_only', '-p', blockFile], 120_000);
        expect(replay.code, `journal replay, round ${round}: ${replay.stdout}${replay.stderr}`).toBeLessThan(
          4,
        );
        const check = await sh('e2fsck', ['-fn', blockFile], 120_000);
        expect(check.code, `e2fsck -fn, round ${round}:\n${check.stdout}${check.stderr}`).toBe(0);
      } finally {
        const dismounted = await vault(['dismount', file]);
        expect(dismounted.code, dismounted.stderr).toBe(0);
      }
    };

    for (let round = 1; round <= ROUNDS; round++) {
      if (round === 1) {
        const mounted = await vault(['mount', file, mountpoint, ...secretArgs], { stdin: `${PASSWORD}\n` });
        expect(mounted.code, mounted.stderr).toBe(0);
      } else {
        await verify(round - 1);
      }
      const pid = (await listedVault(file))?.pid ?? 0;
      expect(pid).toBeGreaterThan(0);
      const writer = startWriter(mountpoint, round, durable);
      // Crash at a random moment, once the writer got going.
      await waitFor(
        () => writer.lines() > 0 || writer.child.exitCode !== null,
        'the writer to start',
        60_000,
      );
      expect(writer.child.exitCode, `the writer failed before the crash: ${writer.errors()}`).toBeNull();
      await sleep(randomDelay(0, 1500));
      process.kill(pid, 'SIGKILL');
      await waitFor(() => !vaultDaemons().includes(pid), 'the daemon to die');
      // The writer now gets I/O errors; stop it either way (it is ours).
      writer.child.kill('SIGKILL');
      await exited(writer.child);
      fsyncsConfirmed += writer.lines();
      lastWriterErrors = writer.errors().trim().split('\n').slice(-3).join(' | ');

      expect((await listedVault(file))?.state).toBe('broken');
      const cleaned = await vault(['dismount', file]);
      expect(cleaned.code, cleaned.stderr).toBe(0);
      expect(leftovers(dir)).toEqual([]);
      await fsck(round);
    }
    await verify(ROUNDS);
    const dismounted = await vault(['dismount', mountpoint]);
    expect(dismounted.code, dismounted.stderr).toBe(0);
    expect(leftovers(dir)).toEqual([]);
    expect(existsSync(mountpoint)).toBe(true);
    console.log(`crash rounds: ${ROUNDS} survived, ${fsyncsConfirmed} confirmed fsyncs checked`);
  });
});
