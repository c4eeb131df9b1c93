// Shared end-to-end helpers: run the real bin/vault (piped stdin, exit code, stdout, stderr), temporary
// directories, waiting for a condition, and checks that a test left no mount, loop device, daemon or
// state directory behind. Generic on purpose: every e2e test file may use them. dist/, which bin/vault
// runs, is built once per run by global-setup.ts.
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';

export const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const VAULT_BIN = join(ROOT, 'bin/vault');
export const RUN_DIR = '/run/vault';
/** The cheapest Argon2id level: e2e tests are about mounting, not about the KDF. */
export const FAST_COST = '1';

/**
 * VAULT_REQUIRE_E2E=1 (set by .ci/run): a missing prerequisite fails instead of skipping, so a CI
 * without FUSE, root or a tool cannot pass with no e2e test run. Every e2e skip goes through lacks()
 * or skipTest() below; the only other skip is the opt-in timing file foreign-unlock-times.test.ts
 * (VAULT_BENCH_FOREIGN=1), which is a benchmark someone asks for, not a missing prerequisite.
 */
export const REQUIRE_E2E = process.env.VAULT_REQUIRE_E2E === '1';

/** What an e2e test may need from the machine. */
export type Prerequisite = 'root' | 'mount' | 'fio' | 'fuse2fs' | 'script' | 'cryptsetup' | 'tcplay';

function onPath(name: string): boolean {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  return dirs.some((dir) => dir !== '' && existsSync(join(dir, name)));
}

/** Why `need` is not met on this machine, or null. */
export function whyNot(need: Prerequisite): string | null {
  const root = process.getuid?.() === 0;
  switch (need) {
    case 'root':
      return root ? null : 'not running as root';
    case 'mount':
      if (!root) return 'not running as root (mount tests need root)';
      return existsSync('/dev/fuse') ? null : 'no /dev/fuse (modprobe fuse, or --device /dev/fuse)';
    case 'fio':
    case 'fuse2fs':
    case 'script':
    case 'cryptsetup':
    case 'tcplay':
      return onPath(need) ? null : `${need} is not installed (bash scripts/setup.sh installs it)`;
  }
}

/** Skips (returns true after saying why) or, under VAULT_REQUIRE_E2E=1, fails with `reason`. */
function missingPrerequisite(reason: string): true {
  if (REQUIRE_E2E) throw new Error(`e2e prerequisite missing with VAULT_REQUIRE_E2E=1: ${reason}`);
  console.warn(`vault e2e: skipped: ${reason}`);
  return true;
}

/**
 * The one gate for e2e prerequisites: `describe.skipIf(lacks('mount', 'fio'))(...)`. False when every
 * need is met; otherwise true (skip, printing why), or under VAULT_REQUIRE_E2E=1 it throws: the file fails.
 */
export function lacks(...needs: Prerequisite[]): boolean {
  const reasons = needs.map(whyNot).filter((reason): reason is string => reason !== null);
  return reasons.length > 0 && missingPrerequisite(reasons.join('; '));
}

/** Skips the running test (`it(..., (context) => ...)`) for `reason`; under VAULT_REQUIRE_E2E=1 fails it. */
export function skipTest(context: { skip: (note?: string) => void }, reason: string): never {
  missingPrerequisite(reason);
  context.skip(reason);
  throw new Error('unreachable: context.skip throws');
}

/** True when this machine can run mount tests (root and /dev/fuse); see lacks(). */
export const canMount = !lacks('mount');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The warning every command prints for FAST_COST (cli/secrets.ts weakCostWarning). vault() takes it out
 * of stderr so tests can assert an otherwise clean stderr; security.test.ts checks it with keepWeakCost.
 */
const WEAK_COST_LINE = /^vault: warning: cost level \d is weak: .*\n/gm;

/** stderr without the weak-cost warning, for commands run some other way than vault(). */
export function withoutWeakCost(stderr: string): string {
  return stderr.replace(WEAK_COST_LINE, '');
}

/** Runs bin/vault with `args`; `stdin` is piped (closed when absent). Never throws for a non-zero exit. */
export function vault(
  args: readonly string[],
  options: {
    stdin?: string | Buffer;
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
    keepWeakCost?: boolean;
  } = {},
): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [VAULT_BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({
        code: code ?? (signal ? 128 : 1),
        stdout,
        stderr: options.keepWeakCost ? stderr : withoutWeakCost(stderr),
      });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.stdin ?? '');
  });
}

/** Runs any command (no shell); resolves with its exit code and output. */
export function sh(command: string, args: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolveRun) => {
    execFile(command, args as string[], { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      const raw = (error as (NodeJS.ErrnoException & { code?: unknown }) | null)?.code;
      resolveRun({ code: error ? (typeof raw === 'number' ? raw : 1) : 0, stdout, stderr });
    });
  });
}

const tempDirs: string[] = [];

/** A fresh temporary directory, removed by removeTempDirs(). */
export async function makeTempDir(prefix = 'vault-e2e-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Removes the temporary directories, refusing to descend into anything still mounted. */
export async function removeTempDirs(): Promise<void> {
  for (const dir of tempDirs.splice(0)) {
    if (mountsUnder(dir).length > 0)
      throw new Error(`still mounted under ${dir}: ${mountsUnder(dir).join(', ')}`);
    await rm(dir, { recursive: true, force: true });
  }
}

export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// ---- what is mounted -----------------------------------------------------------------------------

interface MountLine {
  source: string;
  mountpoint: string;
  fstype: string;
  options: string;
}

function unescapeField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

export function mounts(): MountLine[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [left = '', right = ''] = line.split(' - ');
      const fields = left.split(' ');
      const tail = right.split(' ');
      return {
        mountpoint: unescapeField(fields[4] ?? ''),
        options: fields[5] ?? '',
        fstype: tail[0] ?? '',
        source: unescapeField(tail[1] ?? ''),
      };
    });
}

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

export function mountsUnder(dir: string): string[] {
  return mounts()
    .filter((entry) => under(entry.mountpoint, dir))
    .map((entry) => entry.mountpoint);
}

export function isMounted(path: string): boolean {
  return mounts().some((entry) => entry.mountpoint === path);
}

/** Loop devices and their backing files. */
export function loopDevices(): Array<{ device: string; backingFile: string }> {
  const found: Array<{ device: string; backingFile: string }> = [];
  for (const name of readdirSync('/sys/block').filter((entry) => entry.startsWith('loop'))) {
    try {
      const backingFile = readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim();
      found.push({ device: `/dev/${name}`, backingFile });
    } catch {}
  }
  return found;
}

/** Processes (other than this one) with a file under `dir` open, or their cwd there. */
export function processesUsing(dir: string): Array<{ pid: number; command: string }> {
  const found: Array<{ pid: number; command: string }> = [];
  for (const name of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    const pid = Number(name);
    if (pid === process.pid) continue;
    const links = [`/proc/${pid}/cwd`];
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) links.push(`/proc/${pid}/fd/${fd}`);
    } catch {}
    for (const link of links) {
      let target = '';
      try {
        target = readlinkSync(link);
      } catch {
        continue;
      }
      if (under(target.replace(/ \(deleted\)$/, ''), dir)) {
        let command = '?';
        try {
          command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
        } catch {}
        found.push({ pid, command });
        break;
      }
    }
  }
  return found;
}

/** Vault daemons alive on this machine (any vault). */
export function vaultDaemons(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('fuse/daemon.js');
      } catch {
        return false;
      }
    });
}

/** The /run/vault state directory name of a vault file (device-inode). */
export function stateIdOf(file: string): string {
  const info = statSync(file);
  return `${info.dev}-${info.ino}`;
}

/**
 * Everything a test under `dir` could have left behind: mounts under dir, processes holding files
 * there (a daemon holds its vault file open), state directories of the vault files in dir, loop devices
 * on their block files, and `extraPaths` (e.g. a /media/vault mountpoint). Empty when all is clean.
 */
export function leftovers(dir: string, extraPaths: readonly string[] = []): string[] {
  const found: string[] = [];
  for (const mountpoint of mountsUnder(dir)) found.push(`mount at ${mountpoint}`);
  for (const holder of processesUsing(dir))
    found.push(`process ${holder.pid} (${holder.command}) uses ${dir}`);
  const ids: string[] = [];
  try {
    for (const name of readdirSync(dir)) {
      try {
        if (statSync(join(dir, name)).isFile()) ids.push(stateIdOf(join(dir, name)));
      } catch {}
    }
  } catch {}
  for (const id of ids) {
    const stateDir = `${RUN_DIR}/${id}`;
    if (existsSync(stateDir)) found.push(`state directory ${stateDir}`);
    for (const entry of mounts())
      if (under(entry.mountpoint, stateDir)) found.push(`mount at ${entry.mountpoint}`);
    for (const loop of loopDevices()) {
      if (under(loop.backingFile, stateDir)) found.push(`loop device ${loop.device} on ${loop.backingFile}`);
    }
  }
  for (const path of extraPaths) if (existsSync(path)) found.push(`path ${path}`);
  return found;
}

/**
 * One temporary directory for a whole suite, handed to `use`; after the suite,
 * whatever is still mounted or running there is cleaned up, and the suite fails if there was any.
 */
export function useSuiteDir(prefix: string, use: (dir: string) => void): void {
  let dir = '';
  beforeAll(async () => {
    dir = await makeTempDir(prefix);
    use(dir);
  });
  afterAll(async () => {
    const cleaned = await forceCleanup(dir);
    await removeTempDirs();
    expect(cleaned, 'the test left these behind').toEqual([]);
  });
}
/**
 * The usual suite set-up: one temporary directory, handed to `use`, that is cleaned up
 * (forceCleanup) after every test and removed after the suite.
 */
export function useTempDir(prefix: string, use: (dir: string) => void): void {
  let dir = '';
  beforeAll(async () => {
    dir = await makeTempDir(prefix);
    use(dir);
  });
  afterEach(async () => {
    await forceCleanup(dir);
  });
  afterAll(async () => {
    await removeTempDirs();
  });
}

/**
 * Best-effort clean-up after a failed test, so one failure does not cascade: dismount every vault of
 * `dir` with --force, then kill what remains. Returns what had to be cleaned.
 */
export async function forceCleanup(dir: string): Promise<string[]> {
  const before = leftovers(dir);
  if (before.length === 0) return before;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    try {
      if (statSync(path).isFile() && existsSync(`${RUN_DIR}/${stateIdOf(path)}`)) {
        await vault(['dismount', '--force', path], { timeoutMs: 30_000 });
      }
    } catch {}
  }
  for (const holder of processesUsing(dir)) {
    try {
      process.kill(holder.pid, 'SIGKILL');
    } catch {}
  }
  for (const mountpoint of mountsUnder(dir).reverse()) await sh('umount', ['--lazy', mountpoint]);
  return before;
}

/** The `vault list --json` entry of a vault file, or undefined when it is not mounted. */
export async function listedVault(
  file: string,
): Promise<
  { file: string; pid: number; state: string; mountpoint: string | null; blockFile: string } | undefined
> {
  const result = await vault(['list', '--json']);
  const entries = JSON.parse(result.stdout || '[]') as Array<{
    file: string;
    pid: number;
    state: string;
    mountpoint: string | null;
    blockFile: string;
  }>;
  return entries.find((entry) => entry.file === resolve(file));
}

/** Commands that take a secret (and so --cost); the others refuse the option. */
const UNLOCKING_COMMANDS = new Set([
  'create',
  'mount',
  'info',
  'passwd',
  'key',
  'header',
  'repair',
  'resize',
  'import',
  'export',
]);

/**
 * Runs bin/vault expecting success: adds `--cost FAST_COST` to commands that unlock, and fails the test
 * with the command's stderr when it exits non-zero or prints an error.
 */
export async function vaultOk(args: readonly string[], stdin = ''): Promise<RunResult> {
  const withCost = UNLOCKING_COMMANDS.has(args[0] ?? '') ? [...args, '--cost', FAST_COST] : [...args];
  const result = await vault(withCost, { stdin });
  if (result.code !== 0 || /vault: error/.test(result.stderr)) {
    throw new Error(`vault ${withCost.join(' ')} exited ${result.code}:\n${result.stderr}`);
  }
  return result;
}

// ---- a pseudo-terminal ---------------------------------------------------------------------------

/**
 * One run of bin/vault with a pseudo-terminal (util-linux `script`) as its stdin, stdout and stderr, as a
 * person at a keyboard meets it: wait for a prompt on `screen`, type into it. Needs lacks('script').
 */
export class PtyRun {
  readonly child: ChildProcessWithoutNullStreams;
  screen = '';
  readonly exitCode: Promise<number>;

  constructor(args: readonly string[], options: { cwd?: string } = {}) {
    const quote = (word: string) => (/^[\w./=-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`);
    const command = ['exec', process.execPath, VAULT_BIN, ...args].map(quote).join(' ');
    // script -e: exit with the child's code; -q: no banner; the log goes to /dev/null.
    this.child = spawn('/usr/bin/script', ['-qec', command, '/dev/null'], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, SHELL: '/bin/sh', TERM: 'dumb' },
    });
    this.child.stdout.on('data', (chunk: Buffer) => {
      this.screen += chunk.toString('utf8');
    });
    this.exitCode = new Promise((resolveExit) => this.child.on('close', (code) => resolveExit(code ?? -1)));
  }

  /** Waits until `text` shows after position `from`; returns the position just after it. */
  async waitFor(text: string, from = 0): Promise<number> {
    await waitFor(() => this.screen.indexOf(text, from) >= 0, `"${text}" on the terminal:\n${this.screen}`);
    return this.screen.indexOf(text, from) + text.length;
  }

  /** Waits for `prompt`, then types `keys`. */
  async answer(prompt: string, keys: string, from = 0): Promise<number> {
    const after = await this.waitFor(prompt, from);
    this.child.stdin.write(keys);
    return after;
  }

  async exit(): Promise<number> {
    const code = await this.exitCode;
    this.child.stdin.end();
    return code;
  }

  /** Ends the run and its child if still going (after a failed expectation). */
  kill(): void {
    let children: number[] = [];
    try {
      const pid = this.child.pid;
      children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
        .split(' ')
        .filter(Boolean)
        .map(Number);
    } catch {}
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    for (const pid of children) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
}
