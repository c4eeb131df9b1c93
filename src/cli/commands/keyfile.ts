// `vault keyfile generate <path>`: a fresh keyfile of 64 random bytes (512 bits, the keyfile digest size),
// created with O_EXCL and mode 0600 so it can neither replace an existing file nor be read by others.
import { constants } from 'node:fs';
import { type FileHandle, mkdir, open, unlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { VaultError } from '../../container/errors.js';
import { randomBytes } from '../../crypto/random.js';

export const KEYFILE_BYTES = 64;

export function register(program: Command): void {
  const keyfile = program
    .command('keyfile')
    .description('make keyfiles')
    .addHelpText('after', '\nExample:\n  vault keyfile generate /root/backup.key');
  keyfile
    .command('generate')
    .description(`write a new keyfile of ${KEYFILE_BYTES} random bytes (mode 0600; never overwrites)`)
    .argument('<path>', 'where to write the keyfile; must not exist yet')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  vault keyfile generate /root/backup.key\n' +
        '  vault create 1G backup.vault -k /root/backup.key\n\n' +
        'Keep a copy of the keyfile somewhere safe: without it the vault cannot be opened.',
    )
    .action(async (path: string) => {
      await generateKeyfile(path);
      process.stderr.write(`vault: wrote ${KEYFILE_BYTES}-byte keyfile ${path} (mode 0600)\n`);
    });
}

export async function generateKeyfile(path: string): Promise<void> {
  let handle: FileHandle;
  // Missing parent directories are made private (0700), as a place for keys should be: /etc/vault.
  const created = await mkdir(dirname(resolve(path)), { recursive: true, mode: 0o700 }).catch(
    () => undefined,
  );
  if (created) process.stderr.write(`vault: created ${created} (mode 0700)\n`);
  try {
    handle = await open(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
  } catch (error) {
    throw openError(error, path);
  }
  const keyBytes = randomBytes(KEYFILE_BYTES);
  try {
    // The umask can only remove bits; set 0600 explicitly in case the directory has default ACLs.
    await handle.chmod(0o600);
    await handle.writeFile(keyBytes);
    await handle.sync();
    await handle.close();
  } catch (error) {
    await handle.close().catch(() => {});
    await unlink(path).catch(() => {});
    throw new VaultError(
      'IO',
      `cannot write keyfile ${path}: ${errorText(error)}`,
      'check free space and permissions',
      {
        cause: error,
      },
    );
  } finally {
    keyBytes.fill(0);
  }
}

function openError(error: unknown, path: string): VaultError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EEXIST' || code === 'ELOOP') {
    return new VaultError(
      'EXISTS',
      `${path} already exists`,
      'choose a new path; vault never overwrites a keyfile',
    );
  }
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new VaultError('NOT_FOUND', `directory of ${path} does not exist`, 'create the directory first');
  }
  return new VaultError(
    'IO',
    `cannot create keyfile ${path}: ${errorText(error)}`,
    'check the path and its permissions',
    {
      cause: error,
    },
  );
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message.replace(/^[A-Z]+: /, '') : String(error);
}
