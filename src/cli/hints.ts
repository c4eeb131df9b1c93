// The CLI's words for the library's errors. The container layer is embeddable: its messages and hints
// name no command and no flag, and each error that needs the CLI's advice carries a reason (and the
// values it is about). Here those reasons become what a vault user types: `-k`, `--cost`, `vault repair`.
import { VAULT_WARNINGS } from '../container/warnings.js';
import type { ErrorDetails, VaultError } from '../host/errors.js';

interface CliWords {
  /** Replaces the library's message where the CLI names the option the user gave. */
  message?: (details: ErrorDetails) => string;
  hint: (details: ErrorDetails) => string;
}

// Details are strings or numbers set by the library next to each reason (see its VaultError).
type D = Record<string, string | number | undefined>;

export const CLI_WORDS: Readonly<Record<string, CliWords>> = {
  'cannot-unlock': {
    hint: () => 'check the password, give every keyfile (-k) and the --cost level used at creation',
  },
  'quick-with-hidden': {
    message: () =>
      '--quick cannot be used with a hidden volume: never-written sectors would stand out around it',
    hint: () => 'leave out --quick; the fill runs at disk speed',
  },
  'hidden-too-small': {
    hint: () => 'give a larger --hidden size, e.g. 64M',
  },
  'hidden-too-large-for-vault': {
    hint: () => 'give a smaller --hidden size or a larger vault',
  },
  'cost-needs-memory': {
    hint: () => 'free some memory, or use a lower --cost level (the one the vault was created with)',
  },
  'interrupted-resize': {
    message: () => 'the vault file is longer than its volume: an earlier `vault resize` was interrupted',
    hint: () => 'run `vault resize` again with the size you wanted; it finishes the job',
  },
  'luks-hash-pim': {
    message: () => '--hash and --pim are for VeraCrypt and TrueCrypt volumes',
    hint: () => 'leave them out for LUKS: its header names the hash',
  },
  'truecrypt-pim': {
    message: () => '--pim is a VeraCrypt setting; TrueCrypt volumes have none',
    hint: () => 'leave out --pim',
  },
  'luks-protect-hidden': {
    hint: () => 'mount without --protect-hidden',
  },
  'protect-hidden-unlock': {
    hint: () => 'give the hidden volume secret as the second secret, or mount without --protect-hidden',
  },
  'read-only': {
    hint: () => 'open it without --read-only',
  },
  'keyslots-full': {
    hint: () => 'remove one with `vault key remove` first',
  },
  'last-keyslot': {
    hint: () => 'add another secret first with `vault key add`',
  },
  'backup-of-damaged-front': {
    hint: (d: D) =>
      `run \`vault repair ${d.path}\` first (it rewrites it from the back copy), then take the backup`,
  },
  'restore-unconfirmed': {
    hint: () =>
      'check that you named the right vault and backup; pass --force if both headers are known to be damaged',
  },
  'stale-copy-only': {
    hint: () => 'run `vault repair` first, then try again',
  },
  'hidden-after-interrupted-resize': {
    message: () => 'the vault file is longer than its volume: an earlier `vault resize` was interrupted',
    hint: () => 'run `vault resize` again with the size you wanted, then add the hidden volume',
  },
  'hidden-needs-repair': {
    hint: () => 'run `vault repair` first, then add the hidden volume',
  },
  'hidden-outer-unmeasurable': {
    hint: (d: D) =>
      `a hidden volume can be added only when the outer volume is ${d.types}; otherwise create a new vault with one: vault create <size> <file> --hidden <size>, and copy the files over`,
  },
  'hidden-no-room': {
    hint: () => 'delete files from the outer volume (or grow it with vault resize), then try again',
  },
  'hidden-too-large': {
    hint: (d: D) => `the largest hidden volume that fits is ${d.largest}: give --hidden ${d.option} or less`,
  },
  'hidden-in-unfilled': {
    message: () =>
      'the tail of this vault was never written (it was created with --quick): a hidden volume there would stand out',
    hint: () =>
      'create a new vault without --quick: vault create <size> <file> --hidden <size>, and copy the files over',
  },
  exists: {
    hint: () => 'choose another name, or pass --force to replace it',
  },
  'permission-denied': {
    hint: () => 'check the file permissions, or use --read-only',
  },
  'outer-filesystem-damaged': {
    hint: (d: D) => `check it first: vault mount <file> --no-filesystem, then ${d.fsck} -n on the block file`,
  },
  'resize-below-interrupted': {
    hint: (d: D) => `run vault resize again with ${d.size} bytes or more`,
  },
  'keyfile-not-found': {
    hint: () => 'check the path given with -k/--keyfile',
  },
  'export-onto-device': {
    hint: () => 'pass --force to write the image onto the device',
  },
  'foreign-cannot-unlock': {
    hint: (d: D) =>
      `check the password and keyfiles (-k); vault opens ${d.opened}; --type, --hash and --pim narrow the search (VeraCrypt's Argon2id is tried only with --type veracrypt or --pim, and above PIM ${d.maxPim} only with --hash argon2)${d.whirlpool}`,
  },
  'truecrypt-argon2': {
    message: () => "--hash argon2 is VeraCrypt's Argon2id; TrueCrypt volumes use PBKDF2 only",
    hint: () => 'leave out --hash, or give --type veracrypt',
  },
  truncated: {
    hint: (d: D) =>
      `restore the vault from a backup copy if you have one; to read what is left, copy it, extend the copy (truncate -s ${d.expected} copy.vol), run \`vault repair copy.vol\`, then mount the copy --read-only`,
  },
  'empty-keyslot': {
    hint: (d: D) => `\`vault key list ${d.path}\` shows the keyslots in use`,
  },
  'luks-one-keyfile': {
    hint: () => 'give exactly one -k keyfile, or the password alone',
  },
  'empty-secret': {
    hint: () => 'type a password, or give a keyfile with -k',
  },
};

const CLI_WARNINGS: ReadonlyMap<string, string> = new Map([
  [VAULT_WARNINGS.primaryDamaged, 'primary header damaged, using the backup; run vault repair'],
  [
    VAULT_WARNINGS.primaryStale,
    'primary header is out of date (an update was interrupted); run vault repair',
  ],
  [
    VAULT_WARNINGS.interruptedResize,
    'the vault file is longer than its volume (an interrupted resize); run vault resize again',
  ],
]);

/** A library warning as the CLI prints it. */
export function cliWarning(text: string): string {
  return CLI_WARNINGS.get(text) ?? text;
}

/** The message and hint the CLI prints for an error: its own words for a known reason, else the library's. */
export function cliWords(error: VaultError): { message: string; hint: string | undefined } {
  const words = error.reason === undefined ? undefined : CLI_WORDS[error.reason];
  return {
    message: words?.message?.(error.details) ?? error.message,
    hint: words ? words.hint(error.details) : error.hint,
  };
}
