// Running system tools: every child process vault starts goes through here (a lint rule allows
// node:child_process nowhere else), found on PATH or in the sbin directories, without our /dev/fuse
// descriptors, with LC_ALL=C so their messages can be matched.
import { ChildProcess, spawn } from 'node:child_process';

export type { ChildProcess };

import { accessSync, constants as fsConstants, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { constants } from 'node:os';
import { VaultError } from './errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** File descriptors of this process that are FUSE devices (/dev/fuse), e.g. an in-process bridge's. */
export function fuseDeviceFds(): number[] {
  const found: number[] = [];
  try {
    for (const name of readdirSync('/proc/self/fd')) {
      try {
        if (readlinkSync(`/proc/self/fd/${name}`) === '/dev/fuse' && !closeOnExec(name))
          found.push(Number(name));
      } catch {}
    }
  } catch {}
  return found;
}

/** O_CLOEXEC (octal 02000000) in the descriptor's flags: no child ever holds it after exec. */
function closeOnExec(fd: string): boolean {
  try {
    const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
    return flags !== undefined && (Number.parseInt(flags, 8) & 0o2000000) !== 0;
  } catch {
    return false;
  }
}

/**
 * The command line to start a child without our /dev/fuse descriptors. One that is not close-on-exec
 * (libfuse 2 opened it so; one passed over a socket by fusermount may be too) would be inherited by a
 * child (mkfs, losetup): if this process then dies (kill -9), the child keeps the FUSE connection alive
 * and waits forever for answers nobody will send. Descriptors with the flag need no wrapper: libfuse 3
 * opens /dev/fuse close-on-exec, so a vault mount starts its tools without a bash in between.
 */
export function withoutFuseFds(command: string, args: readonly string[]): [string, string[]] {
  const fds = fuseDeviceFds();
  if (fds.length === 0) return [command, [...args]];
  const closing = fds.map((fd) => `${fd}>&-`).join(' ');
  // bash, not sh: dash only understands single-digit descriptors in redirections.
  return ['/bin/bash', ['-c', `exec "$@" ${closing}`, 'vault-run', command, ...args]];
}

export interface RunOptions {
  /** Killed (SIGTERM) after this long (its code is then 143); default 60 s, 0 for no limit. */
  timeoutMs?: number;
  /**
   * In a process group of its own, so a Ctrl-C in the terminal reaches only vault: for tools that must
   * not stop half-way (e2fsck, resize2fs), which vault lets finish before it stops itself.
   */
  ownProcessGroup?: boolean;
}

/**
 * Runs a system tool without a shell, found like checkSystem finds it (PATH, then the sbin
 * directories, so a PATH without /sbin works) and without our /dev/fuse descriptors. Never throws for
 * a non-zero exit (callers decide); a tool that cannot be started gives code 127 and the reason.
 */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const resolved = command.includes('/') ? command : (findTool(command) ?? command);
  const [file, argv] = withoutFuseFds(resolved, args);
  return new Promise((resolve) => {
    const child = spawn(file, argv, {
      detached: options.ownProcessGroup ?? false,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    const limit = options.timeoutMs ?? 60_000;
    const timer = limit > 0 ? setTimeout(() => child.kill('SIGTERM'), limit) : undefined;
    let failed: Error | null = null;
    child.on('error', (error) => {
      failed = error;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const err = Buffer.concat(stderr).toString('utf8');
      resolve({
        code: failed ? 127 : (code ?? 128 + signalNumber(signal)),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: failed ? `${command}: ${(failed as Error).message}` : err,
      });
    });
  });
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? (constants.signals[signal] ?? 0) : 0;
}

/** Runs a tool and throws VaultError IO with its stderr when it fails. */
export async function runChecked(command: string, args: readonly string[], what: string): Promise<string> {
  const result = await run(command, args);
  if (result.code !== 0) {
    throw new VaultError(
      'IO',
      `${what} failed: ${firstLine(result.stderr) || `${command} exited ${result.code}`}`,
    );
  }
  return result.stdout;
}

export function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.trim() ?? '';
}

const TOOL_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function findTool(name: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':').filter(Boolean), ...TOOL_DIRS]) {
    try {
      accessSync(`${dir}/${name}`, fsConstants.X_OK);
      return `${dir}/${name}`;
    } catch {}
  }
  return null;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie is dead for our purposes.
  try {
    const status = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return status.slice(status.lastIndexOf(')') + 2, status.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The command line of a process, for messages and to recognise our own daemon. */
export function processCommand(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

export function isChildProcess(value: unknown): value is ChildProcess {
  return value instanceof ChildProcess;
}
