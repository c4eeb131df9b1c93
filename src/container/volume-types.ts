// The volume formats vault opens, by the names --type uses: a module of its own, so that a command can
// check --type without loading the formats' code (volume.ts loads the foreign ones only when needed).
import type { VolumeType } from './formats/foreign.js';

export type { VolumeType };

export const VOLUME_TYPES: readonly VolumeType[] = ['vault', 'luks', 'veracrypt', 'truecrypt'];
