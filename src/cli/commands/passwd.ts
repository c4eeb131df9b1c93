// `vault passwd <file>`: changes the secret of the keyslot the current secret opens. The master key and
// the data never change; other keyslots are untouched.
import type { Command } from 'commander';
import { changeSecret } from '../../container/manage.js';
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
  const command = program
    .command('passwd')
    .description('change the password (and keyfiles) of the keyslot your current secret opens')
    .argument('<file>', 'the vault file');
  addSecretOptions(command);
  addCostOption(command);
  addNewSecretOptions(command);
  command.addHelpText(
    'after',
    `
With --password-stdin, line 1 of stdin is the current password and line 2 the new one.

Examples:
  vault passwd secret.vol
  vault passwd secret.vol -k old.key --new-keyfile new.key
  printf '%s\\n%s\\n' "$OLD" "$NEW" | vault passwd secret.vol --password-stdin`,
  );
  command.action(async (file: string, options: SecretOptions & NewSecretOptions) => {
    await requireFile(file);
    await refuseForeignVolume(file, 'passwd');
    const costLevel = parseCost(options);
    const newCostLevel = newCost(options, costLevel);
    // The current secret is checked first; the new one is asked for only once it has unlocked.
    const slot = await withUnlock(
      options,
      { prompt: `Current password for ${file}: `, files: [file], costLevel },
      (current) =>
        changeSecret(
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
    process.stdout.write(`Changed the secret of keyslot ${slot}.\n`);
  });
}
