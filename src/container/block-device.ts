// What the FUSE bridge serves: a fixed-size array of cleartext bytes. An opened vault is one; the
// bench-only passthrough (a plain file, no encryption) is another, so both run through the same bridge.

export interface BlockDevice {
  /** Cleartext size in bytes (a multiple of 4096 for vaults). */
  readonly size: number;
  readonly readOnly: boolean;
  /** Fills `plain` with the cleartext at byte `offset`. Requires offset + plain.length <= size. */
  readAt(plain: Uint8Array, offset: number): Promise<void>;
  /** Writes `plain` at byte `offset`; resolves only once the bytes are in the host file (not yet synced). */
  writeAt(plain: Uint8Array, offset: number): Promise<void>;
  /** fdatasync of the host file. */
  flush(): Promise<void>;
  /** Flushes, closes the host file and wipes key material. Further calls fail. */
  close(): Promise<void>;
  /**
   * What a native data path (the FUSE bridge) needs to serve the bytes without calling back here;
   * null when this device cannot be served so (then every request comes to readAt/writeAt).
   */
  rawAccess?(): RawAccess | null;
}

/** The device's bytes as they lie in the host file. */
export interface RawAccess {
  /** The host file's descriptor (open for writing unless the device is read-only). */
  fd: number;
  /** Where cleartext byte 0 lies in the host file. */
  dataOffset: number;
  /**
   * XTS-AES master key (64 bytes: AES-256, 32: AES-128), or null: stored as is. The tweak of data
   * sector s (cleartext offset / sectorSize) is ivOffset + s * (sectorSize / ivUnitBytes).
   */
  key: Uint8Array | null;
  sectorSize: number;
  /** Bytes per tweak step; default sectorSize (vaults). dm-crypt plain64 and VeraCrypt count 512. */
  ivUnitBytes?: number;
  /** Tweak of the data area's first sector, in ivUnitBytes units; default 0 (VeraCrypt: dataOffset / 512). */
  ivOffset?: number;
  /** Cleartext bytes [start, end) that no write may touch (the hidden volume), or null. */
  protectedRange: { start: number; end: number } | null;
}
