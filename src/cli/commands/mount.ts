// `vault mount <file> [mountpoint]`: checks first, then the secret, then the daemon (src/fuse) unlocks,
// serves the cleartext block file, attaches a loop device and mounts the filesystem. Prints where.
import type { Command } from 'commander';
import { VaultError } from '../../container/errors.js';
import type { Secret } from '../../container/secret.js';
import { checkMount, type MountResult, mountVault } from '../../fuse/mount.js';
import { parseFsOptions } from '../../host/mounts.js';
import { parseDuration } from '../duration.js';
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
import { DEFAULT_VAULTTAB } from '../vaulttab.js';
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
  idleDismount?: string;
  tab?: string[] | boolean;
  tabFile?: string;
}

export function register(program: Command): void {
  const command = program
    .command('mount')
    .description('unlock a vault and mount the filesystem inside (default mountpoint: /media/vault/<name>)')
    .argument('[file]', 'the vault file (or a LUKS, VeraCrypt or TrueCrypt volume); not with --tab')
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
    )
    .option(
      '--idle-dismount <duration>',
      'dismount after no I/O for this long (30s, 10m, 1h); while files are open it stays mounted and tries again later',
    )
    .option(
      '--tab [vaults...]',
      `mount the vaults listed in ${DEFAULT_VAULTTAB} (all but noauto ones, or those named: name, file or mountpoint)`,
    )
    .option('--tab-file <path>', `read this vaulttab instead of ${DEFAULT_VAULTTAB} (implies --tab)`);
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
  sudo vault mount secret.vol --idle-dismount 10m  # dismounts itself after 10 minutes without I/O
  sudo vault mount --tab                           # every vault in /etc/vaulttab (not noauto ones)
  sudo vault mount --tab data /mnt/backup          # the vaulttab's vaults named data, and on /mnt/backup

With --protect-hidden and --password-stdin, line 1 is the outer password and line 2 the hidden one.
After the first refused write the outer volume is read-only until dismounted (as VeraCrypt does).`,
  );
  command.action(
    async (file: string | undefined, mountpoint: string | undefined, options: MountCommandOptions) => {
      if (options.tab !== undefined || options.tabFile !== undefined) {
        refuseWithTab(command, file, mountpoint);
        const { mountTab } = await import('../tab-mount.js');
        await mountTab({
          tabFile: options.tabFile ?? DEFAULT_VAULTTAB,
          selectors: Array.isArray(options.tab) ? options.tab : [],
          nonInteractive: options.nonInteractive ?? false,
          ...(options.tries === undefined ? {} : { tries: options.tries }),
        });
        return;
      }
      if (file === undefined) {
        throw new VaultError('USAGE', "missing required argument 'file'", 'see `vault mount --help`');
      }
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
      const result = await mountOne({
        file,
        mountpoint,
        secretOptions: options,
        costLevel: parseCost(options),
        volume: await parseVolumeTypeOptions(options),
        volumeType: options.type,
        readOnly: options.readOnly ?? false,
        noFilesystem,
        preserveTimestamps: options.preserveTimestamps ?? false,
        protectHidden: options.protectHidden ?? false,
        hiddenKeyfiles: options.hiddenKeyfile ?? [],
        partition: options.partition ?? null,
        user: options.user ?? false,
        owner: options.owner,
        fsOptions: options.fsOptions === undefined ? [] : parseFsOptions(options.fsOptions),
        idleDismountMs:
          options.idleDismount === undefined ? null : parseDuration(options.idleDismount, '--idle-dismount'),
      });
      for (const warning of result.warnings) warn(warning);
      const { state } = result;
      process.stdout.write(`${noFilesystem ? state.blockFile : state.mountpoint}\n`);
    },
  );
}

/** One mount, as `vault mount` and each vaulttab line ask for it (options already checked). */
export interface MountJob {
  file: string;
  mountpoint: string | undefined;
  /** -k, --password-stdin, --non-interactive, --tries. */
  secretOptions: SecretOptions;
  costLevel: number;
  volume: Awaited<ReturnType<typeof parseVolumeTypeOptions>>;
  volumeType: string | undefined;
  readOnly: boolean;
  noFilesystem: boolean;
  preserveTimestamps: boolean;
  protectHidden: boolean;
  hiddenKeyfiles: string[];
  partition: number | null;
  user: boolean;
  owner: string | undefined;
  fsOptions: string[];
  idleDismountMs: number | null;
}

/** Checks what can be checked first, then asks for the secret (--tries times) and mounts. */
export async function mountOne(job: MountJob): Promise<MountResult> {
  const { file, noFilesystem } = job;
  const target = await checkMount(file, job.mountpoint, {
    noFilesystem,
    user: job.user,
    ...(job.owner === undefined ? {} : { owner: job.owner }),
  });
  return withUnlock(
    job.secretOptions,
    {
      prompt: job.protectHidden ? `Password for the OUTER volume of ${file}: ` : `Password for ${file}: `,
      foreign: true,
      costLevel: job.costLevel,
      volumeType: job.volumeType,
    },
    async (secret) => {
      let hiddenSecret: Secret | null = null;
      try {
        if (job.protectHidden) {
          hiddenSecret = await readSecret(job.secretOptions, {
            prompt: `Password for the HIDDEN volume of ${file} (to protect it): `,
            stdinLine: 1,
            keyfiles: job.hiddenKeyfiles,
            foreign: true,
          });
        }
        return await mountVault(target, {
          readOnly: job.readOnly,
          noFilesystem,
          preserveTimestamps: job.preserveTimestamps,
          costLevel: job.costLevel,
          secret,
          protectHidden: hiddenSecret,
          partition: job.partition,
          user: job.user,
          fsOptions: job.fsOptions,
          idleDismountMs: job.idleDismountMs,
          signal: interruptSignal(),
          volume: job.volume,
        });
      } finally {
        hiddenSecret?.wipe();
      }
    },
  );
}

/** With --tab, the vaulttab line says how each vault is mounted: the options for one vault are refused. */
function refuseWithTab(command: Command, file: string | undefined, mountpoint: string | undefined): void {
  if (file !== undefined || mountpoint !== undefined) {
    throw new VaultError(
      'USAGE',
      '--tab takes the vaults to mount after it (names, files or mountpoints), not as arguments before it',
      'vault mount --tab (every vault of the vaulttab but noauto ones), or vault mount --tab NAME...',
    );
  }
  const allowed = new Set(['tab', 'tabFile', 'nonInteractive', 'tries']);
  for (const option of command.options) {
    const key = option.attributeName();
    if (allowed.has(key) || command.getOptionValueSource(key) !== 'cli') continue;
    throw new VaultError(
      'USAGE',
      `${option.long ?? option.flags} does not go with --tab`,
      'put it in the vaulttab line as an option (docs/CLI.md "vaulttab"); --tab takes --tab-file, --non-interactive and --tries',
    );
  }
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
