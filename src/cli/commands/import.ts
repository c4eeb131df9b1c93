// `vault import <image> <file>`: encrypts a raw disk image or a block device, sector by sector, into a
// new vault whose volume is the image (rounded up to 4 KiB). The vault appears only when complete.
import { realpath, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { VaultError } from '../../container/errors.js';
import { openContainerFile } from '../../container/file.js';
import { hasLuksMagic } from '../../container/formats/luks.js';
import {
  dataSizeForImage,
  importImage,
  importVolume,
  inspectImage,
  refuseSameFile,
} from '../../container/image.js';
import type { Secret } from '../../container/secret.js';
import { checkNewFile } from '../../container/staged-file.js';
import { openVolume, type VolumeOpenOptions } from '../../container/volume.js';
import { refuseIfMounted } from '../../fuse/list.js';
import { loopsOfFile } from '../../host/loop.js';
import { detectFilesystem, mountTable } from '../../host/mounts.js';
import { buildingFile, interruptSignal } from '../interrupt.js';
import { createProgress } from '../progress.js';
import {
  addCostOption,
  addSecretOptions,
  parseCost,
  readSecret,
  type SecretOptions,
  withUnlock,
} from '../secrets.js';
import { formatSize } from '../size.js';
import { addVolumeTypeOptions, parseVolumeTypeOptions, type VolumeTypeOptions } from '../volume-options.js';

interface ImportCommandOptions extends SecretOptions, VolumeTypeOptions {
  force?: boolean;
  oldKeyfile?: string[];
  oldCost?: string;
}

export function register(program: Command): void {
  const command = program
    .command('import')
    .description('encrypt a raw disk image or block device into a new vault of the same size')
    .argument(
      '<image>',
      'a raw image file or block device, or an encrypted volume (LUKS, VeraCrypt, TrueCrypt, vault)',
    )
    .argument('<file>', 'the vault file to create')
    .option('-f, --force', 'replace an existing vault file (only once the new one is complete)')
    .option(
      '--old-keyfile <path>',
      'keyfile of the encrypted source volume (repeatable); -k is for the new vault',
      (path: string, previous: string[] | undefined) => [...(previous ?? []), path],
    )
    .option('--old-cost <level>', 'cost level of a vault source (with --type vault)');
  addSecretOptions(command);
  addCostOption(command);
  addVolumeTypeOptions(command);
  command.addHelpText(
    'after',
    `
Examples:
  vault import disk.img disk.vol                 # asks for the new password twice
  sudo vault import /dev/sdb1 usb.vol            # a whole partition (unmount it first)
  printf '%s\\n' "$PASS" | vault import disk.img disk.vol --password-stdin
  vault import old.luks new.vol                  # a LUKS volume: asks its password, then the new one
  vault import old.hc new.vol --type veracrypt   # VeraCrypt/TrueCrypt/vault sources need --type

The volume size is the image size rounded up to 4 KiB; the file is 256 KiB larger. Every sector is
written, holes of sparse images included (they are read from memory, not from disk). Ctrl-C leaves no
vault behind. The original image is not changed or removed: delete it securely yourself.`,
  );
  command.action(async (image: string, file: string, options: ImportCommandOptions) => {
    const costLevel = parseCost(options);
    const volume = await parseVolumeTypeOptions(options);
    if (volume.type !== undefined || (await startsWithLuksMagic(image))) {
      await importEncrypted(image, file, options, volume, costLevel);
      return;
    }
    // Fail before asking for a password when the source or the target is obviously wrong.
    const source = await inspectImage(image);
    await checkNewFile(file, options.force ?? false);
    await refuseSameFile(image, file, 'the image and the new vault must be different files');
    await refuseMountedReadWrite(image);
    const filesystem = await detectFilesystem(image);
    const secret = await readSecret(options, {
      prompt: `Password for the new vault ${file}: `,
      confirm: true,
    });
    const progress = createProgress('Importing', dataSizeForImage(source.size));
    let result: Awaited<ReturnType<typeof importImage>>;
    buildingFile(file);
    try {
      result = await importImage(image, file, {
        secret,
        costLevel,
        force: options.force ?? false,
        signal: interruptSignal(),
        onProgress: (done) => progress.update(done),
      });
    } finally {
      progress.done();
      secret.wipe();
    }
    const padded =
      result.dataSize === result.imageSize
        ? ''
        : ` (image ${formatSize(result.imageSize)}, ${result.dataSize - result.imageSize} zero bytes added)`;
    process.stdout.write(
      `Imported ${image} into ${file}: volume ${formatSize(result.dataSize)}${padded}, file ${formatSize(result.fileSize)}, ` +
        `${filesystem ? `filesystem ${filesystem}` : 'no filesystem recognised'}.\n`,
    );
    process.stdout.write(
      filesystem
        ? `Mount it with: vault mount ${file} <mountpoint>\n`
        : `Expose its block file with: vault mount ${file} --no-filesystem\n`,
    );
    process.stdout.write(`The original ${image} is unencrypted and still there.\n`);
  });
}

/**
 * A filesystem mounted read-write changes while it is copied: the vault would hold an inconsistent
 * image. Refuses when the device, or a loop device over the image file, is mounted read-write.
 */
async function refuseMountedReadWrite(image: string): Promise<void> {
  const real = await realpath(image);
  const info = await stat(real);
  const devices = info.isBlockDevice() ? [real] : loopsOfFile(real);
  for (const entry of mountTable()) {
    const source = await realpath(entry.source).catch(() => entry.source);
    if (devices.includes(source) && entry.options.split(',').includes('rw')) {
      throw new VaultError(
        'BUSY',
        `${image} is mounted read-write at ${entry.mountpoint}${source === real ? '' : ` (through ${source})`}`,
        `unmount it first (umount ${entry.mountpoint}), or remount it read-only`,
      );
    }
  }
}

async function startsWithLuksMagic(path: string): Promise<boolean> {
  try {
    const file = await openContainerFile(path, 'read');
    try {
      return await hasLuksMagic(file);
    } finally {
      await file.close();
    }
  } catch {
    return false; // inspectImage says what is wrong with it
  }
}

/**
 * The migration path: opens the encrypted source read-only with its own secret (line 1 of stdin with
 * --password-stdin, --old-keyfile), then writes a new vault with the same cleartext (line 2, -k).
 */
async function importEncrypted(
  image: string,
  file: string,
  options: ImportCommandOptions,
  volume: Pick<VolumeOpenOptions, 'type' | 'hash' | 'pim'>,
  costLevel: number,
): Promise<void> {
  await checkNewFile(file, options.force ?? false);
  await refuseSameFile(image, file, 'the source volume and the new vault must be different files');
  await refuseIfMounted(image, { allowReadOnly: true });
  const oldCost = options.oldCost === undefined ? costLevel : parseCost({ cost: options.oldCost });
  const source = await withUnlock(
    options,
    {
      prompt: `Password for the volume ${image}: `,
      keyfiles: options.oldKeyfile ?? [],
      foreign: true,
      costLevel: oldCost,
      volumeType: options.type,
    },
    (oldSecret) => openVolume(image, oldSecret, { ...volume, costLevel: oldCost, readOnly: true }),
  );
  let secret: Secret | null = null;
  const progress = createProgress('Importing', dataSizeForImage(source.size));
  let result: Awaited<ReturnType<typeof importVolume>>;
  try {
    secret = await readSecret(options, {
      prompt: `Password for the new vault ${file}: `,
      confirm: true,
      stdinLine: 1,
    });
    buildingFile(file);
    result = await importVolume(source, file, {
      secret,
      costLevel,
      force: options.force ?? false,
      signal: interruptSignal(),
      onProgress: (done) => progress.update(done),
    });
  } finally {
    progress.done();
    secret?.wipe();
    await source.close();
  }
  const what = 'format' in source ? source.format : 'vault';
  process.stdout.write(
    `Imported the ${what} volume ${image} into ${file}: volume ${formatSize(result.dataSize)}, file ${formatSize(result.fileSize)}.\n`,
  );
  process.stdout.write(
    `The original ${image} is still there; delete it yourself once the new vault is checked.\n`,
  );
}
