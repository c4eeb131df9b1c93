// `vault key add|remove <file>`: manage keyslots (up to 16 secrets open the same vault), like
// cryptsetup luksAddKey / luksRemoveKey. The last keyslot can never be removed.
import type { Command } from 'commander';
import { addKey, removeKey } from '../../container/manage.js';
import { refuseForeignVolume } from '../foreign-refusal.js';
import { addCostOption, addSecretOptions, parseCost, readSecret, type SecretOptions } from '../secrets.js';
import { addNewSecretOptions, type NewSecretOptions, newCost } from './new-secret.js';

export function register(program: Command): void {
  const key = program.command('key').description('add or remove a keyslot (another password or keyfile set)');

  const add = key
    .command('add')
    .description('add a secret: it opens the same vault as the existing one')
    .argument('<file>', 'the vault file');
  addSecretOptions(add);
  addCostOption(add);
  addNewSecretOptions(add);
  add.addHelpText(
    'after',
    `
With --password-stdin, line 1 of stdin is an existing password and line 2 the new one.

Examples:
  vault key add secret.vol                              # existing password, then the new one twice
  vault key add secret.vol --new-keyfile backup.key     # the new secret is a keyfile (Enter for no password)`,
  );
  add.action(async (file: string, options: SecretOptions & NewSecretOptions) => {
    await refuseForeignVolume(file, 'key');
    const costLevel = parseCost(options);
    const newCostLevel = newCost(options, costLevel);
    const current = await readSecret(options, { prompt: `Existing password for ${file}: ` });
    try {
      const added = await readSecret(options, {
        prompt: 'New password: ',
        confirm: true,
        stdinLine: 1,
        keyfiles: options.newKeyfile ?? [],
      });
      try {
        const slot = await addKey(file, current, added, { costLevel, newCostLevel });
        process.stdout.write(`Added keyslot ${slot}.\n`);
      } finally {
        added.wipe();
      }
    } finally {
      current.wipe();
    }
  });

  const remove = key
    .command('remove')
    .description('remove the keyslot that the given secret opens (never the last one)')
    .argument('<file>', 'the vault file');
  addSecretOptions(remove);
  addCostOption(remove);
  remove.addHelpText(
    'after',
    '\nExamples:\n  vault key remove secret.vol          # asks for the password to remove',
  );
  remove.action(async (file: string, options: SecretOptions) => {
    await refuseForeignVolume(file, 'key');
    const costLevel = parseCost(options);
    const secret = await readSecret(options, { prompt: `Password to remove from ${file}: ` });
    try {
      const slot = await removeKey(file, secret, { costLevel });
      process.stdout.write(`Removed keyslot ${slot}.\n`);
    } finally {
      secret.wipe();
    }
  });
}
