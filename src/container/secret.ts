// A vault secret: password and keyfiles reduced to one byte string (the Argon2id input) as
// docs/FORMAT.md "Secret material" describes. Keyfiles are streamed, so any size works.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createKeyfileHasher, secretMaterial } from '../crypto/keyfiles.js';
import { wipe } from '../crypto/random.js';
import { VaultError } from './errors.js';

export interface SecretInputs {
  /**
   * The password bytes as given: no normalisation, no encoding check (UTF-8 in practice, FORMAT.md 6.1).
   * May be empty if keyfiles are given.
   */
  password?: Uint8Array;
  keyfiles?: readonly string[];
}

export class Secret {
  #material: Buffer | null;

  private constructor(material: Buffer) {
    this.#material = material;
  }

  /** Reads and hashes every keyfile, then combines them with the password. Wipes its intermediates. */
  static async fromInputs(inputs: SecretInputs): Promise<Secret> {
    const password = inputs.password ?? new Uint8Array(0);
    const keyfiles = inputs.keyfiles ?? [];
    if (password.length === 0 && keyfiles.length === 0) {
      throw new VaultError(
        'MISSING_SECRET',
        'an empty password is allowed only together with a keyfile',
        'type a password, or give a keyfile with -k',
      );
    }
    const digests: Buffer[] = [];
    try {
      for (const path of keyfiles) digests.push(await hashKeyfile(path));
      return new Secret(secretMaterial(password, digests));
    } finally {
      wipe(...digests);
    }
  }

  /** For the daemon, which receives the material over a pipe. Takes ownership of the buffer. */
  static fromMaterial(material: Buffer): Secret {
    return new Secret(material);
  }

  get material(): Buffer {
    if (!this.#material) throw new Error('secret already wiped');
    return this.#material;
  }

  wipe(): void {
    wipe(this.#material);
    this.#material = null;
  }
}

async function hashKeyfile(path: string): Promise<Buffer> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch {
    throw new VaultError('NOT_FOUND', `keyfile not found: ${path}`, 'check the path given with -k/--keyfile');
  }
  if (!info.isFile()) {
    throw new VaultError(
      'USAGE',
      `keyfile is not a regular file: ${path}`,
      'a keyfile must be a regular file',
    );
  }
  if (info.size === 0) {
    throw new VaultError(
      'USAGE',
      `keyfile is empty: ${path}`,
      'an empty keyfile adds no secret; use another file',
    );
  }
  const hasher = createKeyfileHasher();
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }))
      hasher.update(chunk as Buffer);
  } catch (error) {
    throw new VaultError('IO', `cannot read keyfile: ${path}`, 'check its permissions', { cause: error });
  }
  if (hasher.bytes === 0) {
    throw new VaultError(
      'USAGE',
      `keyfile is empty: ${path}`,
      'an empty keyfile adds no secret; use another file',
    );
  }
  return hasher.digest();
}
