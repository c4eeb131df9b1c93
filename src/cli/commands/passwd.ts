// `vault passwd <file>`: changes the secret of the keyslot the current secret opens. The master key and
// the data never change; other keyslots are untouched.
import type { Command } from 'commander';
import { changeSecret } from '../../container/manage.js';
import { refuseForeignVolume } from '../foreign-refusal.js';
import { addCostOption, addSecretOptions, requireFile, type SecretOptions } from '../secrets.js';
import { addNewSecretOptions, type NewSecretOptions, withCurrentThenNew } from './new-secret.js';

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
    const slot = await withCurrentThenNew(
      file,
      options,
      `Current password for ${file}: `,
      (current, readNew, costs) => changeSecret(file, current, readNew, costs),
    );
    process.stdout.write(`Changed the secret of keyslot ${slot}.\n`);
  });
}
