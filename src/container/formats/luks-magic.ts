// The LUKS magic at offset 0 ("LUKS\xba\xbe", LUKS1 and LUKS2 alike): a module of its own, so that
// detection can rule LUKS out without loading the LUKS code and its KDFs (container/volume.ts).
import type { ContainerFile } from '../file.js';

export const LUKS_MAGIC = Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]); // "LUKS\xba\xbe"

export async function hasLuksMagic(file: ContainerFile): Promise<boolean> {
  if ((await file.size()) < LUKS_MAGIC.length) return false;
  const head = Buffer.alloc(LUKS_MAGIC.length);
  await file.read(head, 0);
  return head.equals(LUKS_MAGIC);
}
