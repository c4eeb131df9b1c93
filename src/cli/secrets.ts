// How a command gets the vault secret: repeatable -k/--keyfile, --password-stdin (one password per line
// of stdin), a no-echo prompt on a terminal, and --non-interactive for scripts. Never argv or env: see
// docs/CLI.md "Why no --password option". Password bytes live in Buffer.alloc'd buffers, wiped after use.
import { timingSafeEqual } from 'node:crypto';
import { read } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { isVaultError, VaultError } from '../container/errors.js';
import { type KeyfileSource, Secret } from '../container/secret.js';
import { costParams, DEFAULT_COST_LEVEL, MAX_COST_LEVEL, MIN_COST_LEVEL } from '../crypto/kdf.js';
import {
  MAX_PASSWORD_BYTES,
  promptCannotTake,
  promptHidden,
  promptNotice,
  promptYesNo,
  stdinIsTerminal,
} from './prompt.js';
import { warn } from './report.js';
import { formatSize } from './size.js';

/** The commander options addSecretOptions/addCostOption add, as `command.opts()` returns them. */
export interface SecretOptions {
  keyfile?: string[];
  passwordStdin?: boolean;
  nonInteractive?: boolean;
  cost?: string;
  tries?: string;
}

export interface ReadSecretRequest {
  /** The prompt, e.g. "Password for vault.img: ". */
  prompt: string;
  /** Ask twice and compare (create, new passwords); warns about short passwords. */
  confirm?: boolean;
  /** With --password-stdin: which line of stdin holds this password, 0-based (passwd: 0 old, 1 new). */
  stdinLine?: number;
  /** Keyfiles for this secret instead of options.keyfile (e.g. the new keyfiles of `vault key add`). */
  keyfiles?: readonly string[];
  /** Also keep what LUKS, VeraCrypt and TrueCrypt volumes need (commands that open foreign volumes). */
  foreign?: boolean;
}

/** Passwords shorter than this (in characters) get a warning when chosen. */
export const SHORT_PASSWORD_CHARS = 12;

const SECRET_HINT = 'pipe the password with --password-stdin, or give a keyfile with -k <path>';

export function addSecretOptions(command: Command): Command {
  return command
    .option(
      '-k, --keyfile <path>',
      'use a keyfile (repeat for several; order does not matter)',
      (path: string, previous: string[] | undefined) => [...(previous ?? []), path],
    )
    .option('--password-stdin', 'read the password from the first line of stdin instead of prompting')
    .option('--non-interactive', 'never prompt; fail with exit code 7 if a secret is missing')
    .option(
      '--tries <n>',
      `how often to ask for a password at a terminal (default ${DEFAULT_TRIES}; without a terminal 1)`,
    );
}

/** Password attempts at a terminal when --tries is not given (cryptsetup's default). */
export const DEFAULT_TRIES = 3;
const MAX_TRIES = 100;

/** How often a command may ask: --tries at a terminal (default 3), always 1 without one. */
export function parseTries(options: SecretOptions): number {
  let tries = DEFAULT_TRIES;
  if (options.tries !== undefined) {
    const text = String(options.tries).trim();
    tries = /^\d{1,3}$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(tries) || tries < 1 || tries > MAX_TRIES) {
      throw new VaultError(
        'USAGE',
        `invalid --tries "${String(options.tries)}": must be a whole number from 1 to ${MAX_TRIES}`,
        `leave it out for ${DEFAULT_TRIES} tries at a terminal`,
      );
    }
  }
  return canPrompt(options) ? tries : 1;
}

export function addCostOption(command: Command): Command {
  return command.option(
    '--cost <level>',
    `Argon2id cost level ${MIN_COST_LEVEL}-${MAX_COST_LEVEL} (default ${DEFAULT_COST_LEVEL}); not stored in the vault, ` +
      'so give the same level at every unlock (see `vault benchmark`)',
  );
}

/** The --cost level as a number, DEFAULT_COST_LEVEL when absent. Throws VaultError USAGE when invalid. */
export function parseCost(options: { cost?: string | number | undefined }): number {
  const raw = options.cost;
  if (raw === undefined) return DEFAULT_COST_LEVEL;
  const text = String(raw).trim();
  const level = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(level) || level < MIN_COST_LEVEL || level > MAX_COST_LEVEL) {
    throw new VaultError(
      'USAGE',
      `invalid cost level "${String(raw)}": must be a whole number from ${MIN_COST_LEVEL} to ${MAX_COST_LEVEL}`,
      `leave out --cost for the default (${DEFAULT_COST_LEVEL}); \`vault benchmark\` shows the time and memory of each level`,
    );
  }
  if (level < WEAK_COST_LEVEL) warn(weakCostWarning(level));
  return level;
}

/** Levels below this (64 MiB or less, one pass) make each password guess cheap: every path warns. */
export const WEAK_COST_LEVEL = 8;

export function weakCostWarning(level: number): string {
  const { memoryKiB, iterations } = costParams(level);
  return (
    `cost level ${level} is weak: Argon2id with ${memoryKiB / 1024} MiB and ${iterations} pass makes ` +
    `each password guess cheap; use ${WEAK_COST_LEVEL} or more (default ${DEFAULT_COST_LEVEL}) unless this is a test`
  );
}

/** True when readSecret would prompt (no --password-stdin, no --non-interactive, stdin is a terminal). */
export function canPrompt(options: SecretOptions): boolean {
  return !options.passwordStdin && !options.nonInteractive && stdinIsTerminal();
}

/**
 * Gathers password and keyfiles into a Secret. With --password-stdin the password is line `stdinLine` of
 * stdin; otherwise a no-echo prompt when allowed (an empty answer is fine when keyfiles are given);
 * otherwise keyfiles alone, or VaultError MISSING_SECRET. Keyfiles are checked before anything is asked.
 */
export async function readSecret(options: SecretOptions, request: ReadSecretRequest): Promise<Secret> {
  const keyfiles = [...(request.keyfiles ?? options.keyfile ?? [])];
  await checkKeyfiles(keyfiles, options);
  let password: Buffer | null = null;
  let piped: Buffer | null = null;
  try {
    if (keyfiles.includes(STDIN_KEYFILE)) piped = await readStdinKeyfile();
    const sources: KeyfileSource[] = keyfiles.map((path) =>
      path === STDIN_KEYFILE && piped ? { name: 'the keyfile on stdin (-k -)', bytes: piped } : path,
    );
    if (options.passwordStdin) {
      password = await readStdinLine(request.stdinLine ?? 0);
      if (request.confirm) refuseUntypable(password);
    } else if (canPrompt(options)) {
      password = await promptPassword(request, keyfiles.length > 0, parseTries(options));
    } else if (keyfiles.length === 0) {
      throw new VaultError(
        'MISSING_SECRET',
        options.nonInteractive
          ? 'no password or keyfile given, and --non-interactive forbids prompting'
          : 'no password or keyfile given, and stdin is not a terminal to prompt on',
        SECRET_HINT,
      );
    }
    return await Secret.fromInputs(password ? { password, keyfiles: sources } : { keyfiles: sources }, {
      foreign: request.foreign ?? false,
    });
  } finally {
    password?.fill(0);
    piped?.fill(0);
  }
}

/** `-k -`: the keyfile is all of stdin (as cryptsetup's --key-file=-). */
export const STDIN_KEYFILE = '-';
/** cryptsetup's default limit for a key file read from stdin. */
const MAX_STDIN_KEYFILE_BYTES = 8 << 20;

export interface UnlockRequest extends ReadSecretRequest {
  /** Files that must exist before anything is asked (the vault, a header backup, ...). */
  files?: readonly string[];
  /** The --cost level, for the "Unlocking (Argon2id, 1 GiB)..." line. */
  costLevel: number;
  /** The --type given, if any: another format's KDF is not Argon2id at that level. */
  volumeType?: string | undefined;
}

/**
 * The whole "secret, then unlock" step of a command: checks that `files` exist, reads the secret, says
 * "Unlocking ..." at a terminal, runs `unlock` with it, and wipes it. When `unlock` fails with
 * CANNOT_UNLOCK and the password came from the prompt, asks again, up to --tries times (as cryptsetup).
 */
export async function withUnlock<T>(
  options: SecretOptions,
  request: UnlockRequest,
  unlock: (secret: Secret) => Promise<T>,
): Promise<T> {
  for (const file of request.files ?? []) await requireFile(file);
  const tries = parseTries(options);
  for (let attempt = 1; ; attempt += 1) {
    const secret = await readSecret(options, request);
    try {
      announceUnlock(request);
      return await unlock(secret);
    } catch (error) {
      if (!isVaultError(error, 'CANNOT_UNLOCK') || attempt >= tries) throw error;
      const left = tries - attempt;
      promptNotice(
        `That did not unlock it (wrong password, keyfile or cost level, or not a vault); ${left} ${left === 1 ? 'try' : 'tries'} left.`,
      );
    } finally {
      secret.wipe();
    }
  }
}

/** At a terminal, a line on stderr before the 1 to 5 seconds of key derivation. */
export function announceUnlock(request: { costLevel: number; volumeType?: string | undefined }): void {
  if (!process.stderr.isTTY) return;
  const type = request.volumeType?.toLowerCase();
  if (type !== undefined && type !== 'vault') {
    process.stderr.write(
      `Unlocking (${type === 'luks' ? 'LUKS' : type === 'veracrypt' ? 'VeraCrypt' : 'TrueCrypt'} key derivation)...\n`,
    );
    return;
  }
  const { memoryKiB } = costParams(request.costLevel);
  process.stderr.write(`Unlocking (Argon2id, ${formatSize(memoryKiB * 1024)})...\n`);
}

/**
 * A named input file must exist before we ask for a secret: a typo should not cost a password
 * (exit code 4, also with --non-interactive). Directories are a usage error.
 */
export async function requireFile(path: string): Promise<void> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new VaultError('NOT_FOUND', `no such file: ${path}`, 'check the path (ls -l it)');
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new VaultError('IO', `permission denied: ${path}`, 'check its permissions, or run with sudo');
    }
    throw new VaultError('IO', `cannot read ${path}: ${(error as Error).message}`, 'check the path');
  }
  if (info.isDirectory()) {
    throw new VaultError('USAGE', `${path} is a directory, not a vault file`, 'name the vault file itself');
  }
}

/** Every keyfile exists and none is named twice, before a prompt asks for the password. */
async function checkKeyfiles(keyfiles: readonly string[], options: SecretOptions): Promise<void> {
  const seen = new Set<string>();
  for (const path of keyfiles) {
    if (path === STDIN_KEYFILE) {
      if (options.passwordStdin) {
        throw new VaultError(
          'USAGE',
          '-k - and --password-stdin both want stdin',
          'pipe one of them: the keyfile (-k -) or the password (--password-stdin), and give the other as a file',
        );
      }
      if (stdinIsTerminal()) {
        throw new VaultError(
          'USAGE',
          '-k - reads a keyfile from stdin, but stdin is a terminal',
          'pipe the keyfile in: vault ... -k - < keyfile, or give its path with -k <path>',
        );
      }
      if (seen.has('stdin')) {
        throw new VaultError('USAGE', 'keyfile given twice: -', 'stdin holds one keyfile; give -k - once');
      }
      seen.add('stdin');
      continue;
    }
    const info = await stat(path).catch(() => null);
    if (!info) {
      throw new VaultError(
        'NOT_FOUND',
        `keyfile not found: ${path}`,
        'check the path given with -k/--keyfile',
      );
    }
    const identity = `${info.dev}:${info.ino}`;
    if (seen.has(identity)) {
      throw new VaultError('USAGE', `keyfile given twice: ${path}`, 'give each keyfile once');
    }
    seen.add(identity);
  }
}

/** A new password must be one the prompt can take later (see promptCannotTake). */
function refuseUntypable(password: Uint8Array): void {
  const reason = promptCannotTake(password);
  if (reason) {
    throw new VaultError(
      'USAGE',
      `this password could not be typed at the password prompt later: ${reason}`,
      `use printable characters (and TAB), at most ${MAX_PASSWORD_BYTES} bytes`,
    );
  }
}

/**
 * The prompt. An empty answer without keyfiles asks again; a new password (`confirm`) is asked twice,
 * asked again on a mismatch, and a short one needs a "y" to be kept. Up to `tries` rounds.
 */
async function promptPassword(
  request: ReadSecretRequest,
  haveKeyfiles: boolean,
  tries: number,
): Promise<Buffer> {
  const prompt = haveKeyfiles ? withNote(request.prompt, '(Enter for none, keyfiles only)') : request.prompt;
  let failure: VaultError | null = null;
  for (let attempt = 1; attempt <= tries; attempt += 1) {
    if (failure) promptNotice(`${capitalise(failure.message)}; try again.`);
    const first = await promptHidden(prompt);
    if (first.length === 0 && !haveKeyfiles) {
      failure = new VaultError(
        'MISSING_SECRET',
        'no password entered',
        'type a password and press Enter, or give a keyfile with -k <path>',
      );
      continue;
    }
    if (!request.confirm) return first;
    let second: Buffer | null = null;
    try {
      second = await promptHidden(
        haveKeyfiles ? 'Repeat the password (Enter for none): ' : 'Repeat the password: ',
      );
      // Constant time, as every comparison of secrets here (the length is not secret: it was typed).
      if (first.length !== second.length || !timingSafeEqual(first, second)) {
        failure = new VaultError(
          'USAGE',
          'the passwords do not match',
          'run the command again and type the same password twice',
        );
        first.fill(0);
        continue;
      }
      if (!(await keepShortPassword(first))) {
        failure = new VaultError(
          'USAGE',
          'a longer password was asked for',
          `choose a password of ${SHORT_PASSWORD_CHARS} characters or more, or a keyfile`,
        );
        first.fill(0);
        continue;
      }
    } catch (error) {
      first.fill(0);
      throw error;
    } finally {
      second?.fill(0);
    }
    return first;
  }
  throw failure ?? new VaultError('MISSING_SECRET', 'no password entered');
}

/** A short new password, at the prompt: warn and ask whether to keep it (default no). */
async function keepShortPassword(password: Uint8Array): Promise<boolean> {
  const characters = countCharacters(password);
  if (characters === 0 || characters >= SHORT_PASSWORD_CHARS) return true;
  promptNotice(
    `This password has only ${characters} characters; a password shorter than ${SHORT_PASSWORD_CHARS} ` +
      'is far easier to guess offline. A longer one, or a keyfile, is safer.',
  );
  return promptYesNo('Use it anyway? [y/N] ');
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function withNote(prompt: string, note: string): string {
  const match = /^(.*?)(:?\s*)$/.exec(prompt);
  return match ? `${match[1]} ${note}${match[2] || ': '}` : prompt;
}

/** UTF-8 characters, counted without decoding into a (unwipeable) JavaScript string. */
function countCharacters(utf8: Uint8Array): number {
  let count = 0;
  for (const byte of utf8) if ((byte & 0xc0) !== 0x80) count += 1;
  return count;
}

/** All of stdin, as one keyfile, in a new Buffer the caller wipes. */
async function readStdinKeyfile(): Promise<Buffer> {
  while (!stdin.ended)
    await readMoreStdin(MAX_STDIN_KEYFILE_BYTES, 'a keyfile on stdin (-k -) may be at most 8 MiB');
  const out = Buffer.alloc(stdin.length);
  stdin.bytes.copy(out, 0, 0, stdin.length);
  return out;
}

// ---- stdin, read once per process and kept (passwd reads the old password, then the new one) ----

/** Stdin beyond this is not a list of passwords. */
const MAX_STDIN_BYTES = 1 << 20;

const stdin = { bytes: Buffer.alloc(0), length: 0, ended: false };
let stdinWipeHooked = false;

/** Line `index` (0-based) of stdin, without its "\n" or "\r\n", in a new Buffer the caller wipes. */
export async function readStdinLine(index: number): Promise<Buffer> {
  if (!stdinWipeHooked) {
    stdinWipeHooked = true;
    process.on('exit', forgetStdin);
  }
  for (;;) {
    const line = findLine(index);
    if (line) {
      const [start, end] = line;
      const out = Buffer.alloc(end - start);
      stdin.bytes.copy(out, 0, start, end);
      return out;
    }
    if (stdin.ended) {
      throw new VaultError(
        'MISSING_SECRET',
        index === 0
          ? 'no password on stdin (--password-stdin)'
          : `no password on line ${index + 1} of stdin (--password-stdin)`,
        index === 0
          ? 'pipe the password into vault, e.g. from a file: vault ... --password-stdin < passfile'
          : `this command reads ${index + 1} passwords from stdin, one per line`,
      );
    }
    await readMoreStdin();
  }
}

/** Wipes what was read from stdin. main.ts calls it when the command is over. */
export function forgetStdin(): void {
  stdin.bytes.fill(0);
  stdin.bytes = Buffer.alloc(0);
  stdin.length = 0;
}

function findLine(index: number): [number, number] | null {
  let start = 0;
  for (let line = 0; ; line += 1) {
    const newline = stdin.bytes.subarray(0, stdin.length).indexOf(0x0a, start);
    if (newline === -1) {
      // The last line may lack its newline, once stdin has ended.
      return stdin.ended && line === index && start < stdin.length ? [start, stdin.length] : null;
    }
    if (line === index) {
      const end = newline > start && stdin.bytes[newline - 1] === 0x0d ? newline - 1 : newline;
      return [start, end];
    }
    start = newline + 1;
  }
}

async function readMoreStdin(
  limit = MAX_STDIN_BYTES,
  tooLong = 'stdin is too long to hold passwords',
): Promise<void> {
  if (stdin.length === stdin.bytes.length) {
    if (stdin.length >= limit) {
      throw new VaultError(
        'USAGE',
        tooLong,
        limit === MAX_STDIN_BYTES
          ? 'give one password per line of stdin'
          : 'use a smaller keyfile, or give its path',
      );
    }
    const grown = Buffer.alloc(Math.max(4096, stdin.bytes.length * 2));
    stdin.bytes.copy(grown, 0, 0, stdin.length);
    stdin.bytes.fill(0);
    stdin.bytes = grown;
  }
  // fs.read straight into our buffer: no stream, so no copies of the password in Node's buffers.
  // Reading fd 0 directly (not process.stdin) also reads only when asked.
  const count = await readFd0(stdin.bytes, stdin.length, stdin.bytes.length - stdin.length);
  if (count === 0) stdin.ended = true;
  stdin.length += count;
}

function readFd0(buffer: Buffer, offset: number, length: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const attempt = (): void =>
      read(0, buffer, offset, length, null, (error, bytesRead) => {
        if (!error) return resolve(bytesRead);
        // A non-blocking stdin (inherited from the parent) has nothing yet: wait a little.
        if (error.code === 'EAGAIN') return void setTimeout(attempt, 20);
        // A closed stdin has no password on it, like an empty one.
        if (error.code === 'EOF' || error.code === 'EBADF') return resolve(0);
        reject(new VaultError('IO', `cannot read stdin: ${error.message}`, 'check what is piped into vault'));
      });
    attempt();
  });
}
