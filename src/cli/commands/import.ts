// `vault import <image> <file>`: encrypts a raw disk image or a block device, sector by sector, into a
// new vault whose volume is the image (rounded up to 4 KiB). The vault appears only when complete.
import { realpath, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { checkNewFile } from '../../container/create.js';
import { VaultError } from '../../container/errors.js';
import { dataSizeForImage, importImage, inspectImage, refuseSameFile } from '../../container/image.js';
import { detectFilesystem, loopsOfFile, mountTable } from '../../fuse/system.js';
import { interruptSignal } from '../interrupt.js';
import { createProgress } from '../progress.js';
import { addCostOption, addSecretOptions, parseCost, readSecret, type SecretOptions } from '../secrets.js';
import { formatSize } from '../size.js';

interface ImportCommandOptions extends SecretOptions {
  force?: boolean;
}

export function register(program: Command): void {
  const command = program
    .command('import')
    .description('encrypt a raw disk image or block device into a new vault of the same size')
    .argument('<image>', 'a raw image file (dd, qemu raw, mkfs on a file) or a block device')
    .argument('<file>', 'the vault file to create')
    .option('-f, --force', 'replace an existing vault file (only once the new one is complete)');
  addSecretOptions(command);
  addCostOption(command);
  command.addHelpText(
    'after',
    `
Examples:
  vault import disk.img disk.vol                 # asks for the new password twice
  sudo vault import /dev/sdb1 usb.vol            # a whole partition (unmount it first)
  printf '%s\\n' "$PASS" | vault import disk.img disk.vol --password-stdin

The volume size is the image size rounded up to 4 KiB; the file is 256 KiB larger. Every sector is
written, holes of sparse images included (they are read from memory, not from disk). Ctrl-C leaves no
vault behind. The original image is not changed or removed: delete it securely yourself.`,
  );
  command.action(async (image: string, file: string, options: ImportCommandOptions) => {
    const costLevel = parseCost(options);
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
