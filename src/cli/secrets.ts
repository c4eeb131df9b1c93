// How a command gets the vault secret: repeatable -k/--keyfile, --password-stdin (one password per line
// of stdin), a no-echo prompt on a terminal, and --non-interactive for scripts. Never argv or env: see
// docs/CLI.md "Why no --password option". Password bytes live in Buffer.alloc'd buffers, wiped after use.
import { timingSafeEqual } from 'node:crypto';
import { read } from 'node:fs';
import type { Command } from 'commander';
import { VaultError } from '../container/errors.js';
import { Secret } from '../container/secret.js';
import { costParams, DEFAULT_COST_LEVEL, MAX_COST_LEVEL, MIN_COST_LEVEL } from '../crypto/kdf.js';
import { promptHidden, stdinIsTerminal } from './prompt.js';
import { warn } from './report.js';

/** The commander options addSecretOptions/addCostOption add, as `command.opts()` returns them. */
export interface SecretOptions {
  keyfile?: string[];
  passwordStdin?: boolean;
  nonInteractive?: boolean;
  cost?: string;
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
    .option('--non-interactive', 'never prompt; fail with exit code 7 if a secret is missing');
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
 * otherwise keyfiles alone, or VaultError MISSING_SECRET.
 */
export async function readSecret(options: SecretOptions, request: ReadSecretRequest): Promise<Secret> {
  const keyfiles = [...(request.keyfiles ?? options.keyfile ?? [])];
  let password: Buffer | null = null;
  try {
    if (options.passwordStdin) {
      password = await readStdinLine(request.stdinLine ?? 0);
    } else if (canPrompt(options)) {
      password = await promptPassword(request, keyfiles.length > 0);
    } else if (keyfiles.length === 0) {
      throw new VaultError(
        'MISSING_SECRET',
        options.nonInteractive
          ? 'no password or keyfile given, and --non-interactive forbids prompting'
          : 'no password or keyfile given, and stdin is not a terminal to prompt on',
        SECRET_HINT,
      );
    }
    return await Secret.fromInputs(password ? { password, keyfiles } : { keyfiles }, {
      foreign: request.foreign ?? false,
    });
  } finally {
    password?.fill(0);
  }
}

async function promptPassword(request: ReadSecretRequest, haveKeyfiles: boolean): Promise<Buffer> {
  const prompt = haveKeyfiles ? withNote(request.prompt, '(Enter for none, keyfiles only)') : request.prompt;
  const first = await promptHidden(prompt);
  if (!request.confirm) return first;
  let second: Buffer | null = null;
  try {
    second = await promptHidden(
      haveKeyfiles ? 'Repeat the password (Enter for none): ' : 'Repeat the password: ',
    );
    // Constant time, as every comparison of secrets here (the length is not secret: it was typed).
    if (first.length !== second.length || !timingSafeEqual(first, second)) {
      throw new VaultError(
        'USAGE',
        'passwords do not match',
        'run the command again and type the same password twice',
      );
    }
  } catch (error) {
    first.fill(0);
    throw error;
  } finally {
    second?.fill(0);
  }
  const characters = countCharacters(first);
  if (characters > 0 && characters < SHORT_PASSWORD_CHARS) {
    warn(
      `this password has only ${characters} characters; a password shorter than ${SHORT_PASSWORD_CHARS} ` +
        'is far easier to guess offline; consider a longer one or a keyfile',
    );
  }
  return first;
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

async function readMoreStdin(): Promise<void> {
  if (stdin.length === stdin.bytes.length) {
    if (stdin.length >= MAX_STDIN_BYTES) {
      throw new VaultError(
        'USAGE',
        'stdin is too long to hold passwords',
        'give one password per line of stdin',
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
