// `vault key add|remove <file>`: manage keyslots (up to 16 secrets open the same vault), like
// cryptsetup luksAddKey / luksRemoveKey. The last keyslot can never be removed.
import type { Command } from 'commander';
import { addKey, removeKey } from '../../container/manage.js';
import { refuseForeignVolume } from '../foreign-refusal.js';
import {
  addCostOption,
  addSecretOptions,
  parseCost,
  readSecret,
  requireFile,
  type SecretOptions,
  withUnlock,
} from '../secrets.js';
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
    await requireFile(file);
    await refuseForeignVolume(file, 'key');
    const costLevel = parseCost(options);
    const newCostLevel = newCost(options, costLevel);
    // The existing secret is checked first; the new one is asked for only once it has unlocked.
    const slot = await withUnlock(
      options,
      { prompt: `Existing password for ${file}: `, files: [file], costLevel },
      (current) =>
        addKey(
          file,
          current,
          () =>
            readSecret(options, {
              prompt: 'New password: ',
              confirm: true,
              stdinLine: 1,
              keyfiles: options.newKeyfile ?? [],
            }),
          { costLevel, newCostLevel },
        ),
    );
    process.stdout.write(`Added keyslot ${slot}.\n`);
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
    await requireFile(file);
    await refuseForeignVolume(file, 'key');
    const costLevel = parseCost(options);
    const slot = await withUnlock(
      options,
      { prompt: `Password to remove from ${file}: `, files: [file], costLevel },
      (secret) => removeKey(file, secret, { costLevel }),
    );
    process.stdout.write(`Removed keyslot ${slot}.\n`);
  });
}
