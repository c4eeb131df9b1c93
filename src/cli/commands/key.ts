// `vault key add|remove <file>`: manage keyslots (up to 16 secrets open the same vault), like
// cryptsetup luksAddKey / luksRemoveKey. The last keyslot can never be removed.
import type { Command } from 'commander';
import { VaultError } from '../../container/errors.js';
import { SLOT_COUNT } from '../../container/layout.js';
import { addKey, removeKey } from '../../container/manage.js';
import { openVault } from '../../container/vault.js';
import { refuseForeignVolume } from '../foreign-refusal.js';
import { printJson } from '../output.js';
import {
  addCostOption,
  addSecretOptions,
  parseCost,
  requireFile,
  type SecretOptions,
  withUnlock,
} from '../secrets.js';
import { addNewSecretOptions, type NewSecretOptions, withCurrentThenNew } from './new-secret.js';

export function register(program: Command): void {
  const key = program
    .command('key')
    .description('list, add or remove keyslots (each holds another password or keyfile set)');

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
    const slot = await withCurrentThenNew(
      file,
      options,
      `Existing password for ${file}: `,
      (current, readNew, costs) => addKey(file, current, readNew, costs),
    );
    process.stdout.write(`Added keyslot ${slot}.\n`);
  });

  const list = key
    .command('list')
    .description('show the keyslots in use and which one the given secret opens')
    .argument('<file>', 'the vault file')
    .option('--json', 'print one JSON object: total, used, opened');
  addSecretOptions(list);
  addCostOption(list);
  list.addHelpText(
    'after',
    `
What a slot holds (a password, keyfiles or both) is not recorded in the vault: only the slot your
secret opens can be described, by the secret you gave.

Examples:
  vault key list secret.vol
  vault key list secret.vol -k backup.key --non-interactive`,
  );
  list.action(async (file: string, options: SecretOptions & { json?: boolean }) => {
    await requireFile(file);
    await refuseForeignVolume(file, 'key');
    const costLevel = parseCost(options);
    const keyslots = await withUnlock(
      options,
      { prompt: `Password for ${file}: `, files: [file], costLevel },
      async (secret) => {
        const vault = await openVault(file, secret, { costLevel, readOnly: true });
        try {
          return vault.info().keyslots;
        } finally {
          await vault.close();
        }
      },
    );
    if (options.json) {
      printJson(keyslots);
      return;
    }
    const given = describeSecret(options);
    for (let slot = 0; slot < keyslots.total; slot += 1) {
      if (!keyslots.used.includes(slot)) continue;
      const note = slot === keyslots.opened ? `in use; opened by the secret you gave (${given})` : 'in use';
      process.stdout.write(`keyslot ${String(slot).padStart(2)}: ${note}\n`);
    }
    process.stdout.write(
      `${keyslots.used.length} of ${keyslots.total} keyslots in use` +
        (keyslots.opened === null
          ? '; this secret opens only an out-of-date header copy (run vault repair)'
          : '') +
        '.\n',
    );
  });

  const remove = key
    .command('remove')
    .description(
      'remove the keyslot that the given secret opens, or keyslot N with --slot N (never the last one)',
    )
    .argument('<file>', 'the vault file')
    .option(
      '--slot <n>',
      'remove keyslot n (see `vault key list`); any secret of the vault unlocks',
      parseSlot,
    );
  addSecretOptions(remove);
  addCostOption(remove);
  remove.addHelpText(
    'after',
    '\nExamples:\n  vault key remove secret.vol          # asks for the password to remove\n' +
      '  vault key remove secret.vol --slot 3 # removes keyslot 3 (a forgotten password), with another secret',
  );
  remove.action(async (file: string, options: SecretOptions & { slot?: number }) => {
    await requireFile(file);
    await refuseForeignVolume(file, 'key');
    const costLevel = parseCost(options);
    const slot = await withUnlock(
      options,
      {
        prompt:
          options.slot === undefined
            ? `Password to remove from ${file}: `
            : `A password of ${file} (any keyslot): `,
        files: [file],
        costLevel,
      },
      (secret) =>
        removeKey(file, secret, { costLevel, ...(options.slot === undefined ? {} : { slot: options.slot }) }),
    );
    process.stdout.write(`Removed keyslot ${slot}.\n`);
  });
}

function parseSlot(text: string): number {
  if (!/^\d{1,2}$/.test(text) || Number(text) >= SLOT_COUNT) {
    throw new VaultError(
      'USAGE',
      `--slot wants a keyslot number from 0 to ${SLOT_COUNT - 1}, not "${text}"`,
      'see `vault key list <file>`',
    );
  }
  return Number(text);
}

/** What the given secret was given with (the only slot whose kind can be told). */
function describeSecret(options: SecretOptions): string {
  const keyfiles = options.keyfile?.length ?? 0;
  return keyfiles === 0 ? 'no keyfile' : `${keyfiles} keyfile${keyfiles === 1 ? '' : 's'}`;
}
