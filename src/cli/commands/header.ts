// `vault header backup|restore`: a sealed copy of the header (4096 bytes, as opaque as the vault) to
// keep elsewhere; restoring it needs a secret it holds, and refuses a backup of another vault.
import type { Command } from 'commander';
import { backupHeader, restoreHeader } from '../../container/manage.js';
import { refuseForeignVolume } from '../foreign-refusal.js';
import { addCostOption, addSecretOptions, parseCost, readSecret, type SecretOptions } from '../secrets.js';

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
    await refuseForeignVolume(file, 'header');
    const costLevel = parseCost(options);
    const secret = await readSecret(options, { prompt: `Password for ${file}: ` });
    try {
      await backupHeader(file, secret, target, { costLevel });
    } finally {
      secret.wipe();
    }
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
    await refuseForeignVolume(file, 'header');
    const costLevel = parseCost(options);
    const secret = await readSecret(options, { prompt: `Password stored in ${source}: ` });
    try {
      await restoreHeader(file, secret, source, { costLevel, force: options.force ?? false });
    } finally {
      secret.wipe();
    }
    process.stdout.write(`Header of ${file} restored from ${source}.\n`);
  });
}
