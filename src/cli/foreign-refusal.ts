// Keyslot and layout management is for vaults only: passwd, key, repair, resize and header refuse a
// LUKS volume (recognisable by its magic) with a message that says what to use instead. VeraCrypt and
// TrueCrypt volumes cannot be recognised without their secret; their unlock failure names them instead.
import { open } from 'node:fs/promises';
import { VaultError } from '../container/errors.js';
import { LUKS_MAGIC } from '../container/formats/luks-magic.js';

const TOOLS = {
  passwd: 'cryptsetup luksChangeKey',
  key: 'cryptsetup luksAddKey / luksRemoveKey',
  repair: 'cryptsetup repair, or luksHeaderRestore from a header backup',
  resize: 'truncate -s, then cryptsetup resize once opened by cryptsetup',
  header: 'cryptsetup luksHeaderBackup / luksHeaderRestore',
} as const;

export async function refuseForeignVolume(file: string, command: keyof typeof TOOLS): Promise<void> {
  const head = Buffer.alloc(LUKS_MAGIC.length);
  try {
    const handle = await open(file, 'r');
    try {
      await handle.read(head, 0, head.length, 0);
    } finally {
      await handle.close();
    }
  } catch {
    return; // the command itself reports a missing or unreadable file
  }
  if (head.equals(LUKS_MAGIC)) {
    throw new VaultError(
      'USAGE',
      `${file} is a LUKS volume: vault ${command} works on vaults only (it does not manage LUKS keyslots or layout)`,
      `use ${TOOLS[command]} (it works on files without device-mapper), or migrate it: vault import ${file} new.vol`,
    );
  }
}
