// `vault header backup|restore`: a sealed copy of the header (4096 bytes, as opaque as the vault) to
// keep elsewhere; restoring it needs a secret it holds, and refuses a backup of another vault.
import type { Command } from 'commander';
import { backupHeader, restoreHeader } from '../../container/manage.js';
import { checkNewFile } from '../../container/staged-file.js';
import { refuseForeignVolume } from '../foreign-refusal.js';
import {
  addCostOption,
  addSecretOptions,
  parseCost,
  requireFile,
  type SecretOptions,
  withUnlock,
} from '../secrets.js';

export function register(program: Command): void {
  const header = program.command('header').description('back up or restore the vault header');

  const backup = header
    .command('backup')
    .description('write a sealed copy of the header to <backup> (needs a valid secret)')
    .argument('<file>', 'the vault file')
    .argument('<backup>', 'the header backup file to create (refuses to overwrite)');
  addSecretOptions(backup);
  addCostOption(backup);
  backup.addHelpText('after', '\nExamples:\n  vault header backup secret.vol /media/usb/secret.hdr');
  backup.action(async (file: string, target: string, options: SecretOptions) => {
    await requireFile(file);
    await refuseForeignVolume(file, 'header');
    const costLevel = parseCost(options);
    // Before the prompt: a header backup is never overwritten.
    await checkNewFile(target, false, 'choose another name: a header backup is never overwritten');
    await withUnlock(options, { prompt: `Password for ${file}: `, files: [file], costLevel }, (secret) =>
      backupHeader(file, secret, target, { costLevel }),
    );
    process.stdout.write(`Header of ${file} saved to ${target}. The secrets valid now will open it.\n`);
  });

  const restore = header
    .command('restore')
    .description('rewrite both header copies of <file> from a header backup')
    .argument('<file>', 'the vault file')
    .argument('<backup>', 'the header backup file')
    .option(
      '-f, --force',
      'restore even when neither header copy of the vault can confirm the backup belongs to it',
    );
  addSecretOptions(restore);
  addCostOption(restore);
  restore.addHelpText(
    'after',
    '\nThe secret is one that was valid when the backup was made.\n\nExamples:\n  vault header restore secret.vol /media/usb/secret.hdr',
  );
  restore.action(async (file: string, source: string, options: SecretOptions & { force?: boolean }) => {
    await requireFile(file);
    await requireFile(source);
    await refuseForeignVolume(file, 'header');
    const costLevel = parseCost(options);
    await withUnlock(
      options,
      { prompt: `Password stored in ${source}: `, files: [file, source], costLevel },
      (secret) => restoreHeader(file, secret, source, { costLevel, force: options.force ?? false }),
    );
    process.stdout.write(`Header of ${file} restored from ${source}.\n`);
  });
}
