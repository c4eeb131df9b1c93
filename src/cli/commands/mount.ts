// `vault mount <file> [mountpoint]`: checks first, then the secret, then the daemon (src/fuse) unlocks,
// serves the cleartext block file, attaches a loop device and mounts the filesystem. Prints where.
import type { Command } from 'commander';
import { VaultError } from '../../container/errors.js';
import type { Secret } from '../../container/secret.js';
import { checkMount, mountVault } from '../../fuse/mount.js';
import { parseFsOptions } from '../../host/mounts.js';
import { interruptSignal } from '../interrupt.js';
import { warn } from '../report.js';
import {
  addCostOption,
  addSecretOptions,
  parseCost,
  readSecret,
  type SecretOptions,
  withUnlock,
} from '../secrets.js';
import { addVolumeTypeOptions, parseVolumeTypeOptions, type VolumeTypeOptions } from '../volume-options.js';

interface MountCommandOptions extends SecretOptions, VolumeTypeOptions {
  readOnly?: boolean;
  filesystem: boolean;
  preserveTimestamps?: boolean;
  protectHidden?: boolean;
  hiddenKeyfile?: string[];
  partition?: number;
  user?: boolean;
  owner?: string;
  fsOptions?: string;
}

export function register(program: Command): void {
  const command = program
    .command('mount')
    .description('unlock a vault and mount the filesystem inside (default mountpoint: /media/vault/<name>)')
    .argument('<file>', 'the vault file (or a LUKS, VeraCrypt or TrueCrypt volume)')
    .argument('[mountpoint]', 'an empty directory; created under /media/vault when left out')
    .option('-r, --read-only', 'mount read-only: nothing reaches the vault file')
    .option('--no-filesystem', 'only expose the decrypted block file and print its path (for dd, mkfs, fsck)')
    .option(
      '--preserve-timestamps',
      "keep the vault file's modification time unchanged (hides changes from backups)",
    )
    .option(
      '--protect-hidden',
      'mount the outer volume and refuse every write that would land in its hidden volume (asks for both secrets)',
    )
    .option(
      '--hidden-keyfile <path>',
      'keyfile of the hidden volume, with --protect-hidden (repeatable)',
      (path: string, previous: string[] | undefined) => [...(previous ?? []), path],
    )
    .option(
      '--user',
      'mount an ext4 vault without root: fuse2fs on the block file instead of a loop device (slower; default mountpoint ~/vault/<name>)',
    )
    .option(
      '--fs-options <list>',
      'extra mount options, comma-separated (e.g. noatime); nosuid,nodev are always added and cannot be undone',
    )
    .option(
      '--owner <user>',
      'who the mount belongs to (root only; default: the user who ran sudo, else you)',
    )
    .option(
      '--partition <n>',
      'mount partition n of a volume that holds a partition table (MBR or GPT)',
      parsePartition,
    );
  addSecretOptions(command);
  addCostOption(command);
  addVolumeTypeOptions(command);
  command.addHelpText(
    'after',
    `
Examples:
  sudo vault mount secret.vol                     # prints /media/vault/secret
  sudo vault mount secret.vol /mnt/secret --read-only
  sudo vault mount secret.vol --no-filesystem     # prints the block file, e.g. for fsck
  printf '%s\\n' "$PASS" | sudo vault mount secret.vol /mnt/s --password-stdin --non-interactive
  sudo vault mount disk.vol /mnt/p2 --partition 2  # partition 2 of a partitioned image
  sudo vault mount deniable.vol /mnt/outer --protect-hidden   # outer password, then the hidden one
  sudo vault mount old.hc /mnt/old --type veracrypt --pim 485  # a VeraCrypt container
  vault mount disk.luks --user                     # a LUKS2 container without root (ext4 via fuse2fs)

With --protect-hidden and --password-stdin, line 1 is the outer password and line 2 the hidden one.
After the first refused write the outer volume is read-only until dismounted (as VeraCrypt does).`,
  );
  command.action(async (file: string, mountpoint: string | undefined, options: MountCommandOptions) => {
    const costLevel = parseCost(options);
    const volume = await parseVolumeTypeOptions(options);
    const noFilesystem = !options.filesystem;
    if (options.partition !== undefined && noFilesystem) {
      throw new VaultError(
        'USAGE',
        '--partition and --no-filesystem do not go together',
        'with --no-filesystem, attach the block file yourself: losetup --find --show --partscan <block file>',
      );
    }
    if (options.user && options.partition !== undefined) {
      throw new VaultError(
        'USAGE',
        '--partition and --user do not go together',
        'a partition needs a loop device (root)',
      );
    }
    const user = options.user ?? false;
    const fsOptions = options.fsOptions === undefined ? [] : parseFsOptions(options.fsOptions);
    const target = await checkMount(file, mountpoint, {
      noFilesystem,
      user,
      ...(options.owner === undefined ? {} : { owner: options.owner }),
    });
    const result = await withUnlock(
      options,
      {
        prompt: options.protectHidden
          ? `Password for the OUTER volume of ${file}: `
          : `Password for ${file}: `,
        foreign: true,
        costLevel,
        volumeType: options.type,
      },
      async (secret) => {
        let hiddenSecret: Secret | null = null;
        try {
          if (options.protectHidden) {
            hiddenSecret = await readSecret(options, {
              prompt: `Password for the HIDDEN volume of ${file} (to protect it): `,
              stdinLine: 1,
              keyfiles: options.hiddenKeyfile ?? [],
              foreign: true,
            });
          }
          return await mountVault(target, {
            readOnly: options.readOnly ?? false,
            noFilesystem,
            preserveTimestamps: options.preserveTimestamps ?? false,
            costLevel,
            secret,
            protectHidden: hiddenSecret,
            partition: options.partition ?? null,
            user,
            fsOptions,
            signal: interruptSignal(),
            volume,
          });
        } finally {
          hiddenSecret?.wipe();
        }
      },
    );
    for (const warning of result.warnings) warn(warning);
    const { state } = result;
    process.stdout.write(`${noFilesystem ? state.blockFile : state.mountpoint}\n`);
  });
}

function parsePartition(text: string): number {
  if (!/^[1-9]\d{0,2}$/.test(text)) {
    throw new VaultError(
      'USAGE',
      `--partition wants a partition number (1, 2, ...), not "${text}"`,
      'e.g. --partition 1',
    );
  }
  return Number(text);
}
