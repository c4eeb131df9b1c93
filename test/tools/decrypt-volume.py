#!/usr/bin/env python3
# TEST ONLY: an independent decryption of a LUKS/VeraCrypt/TrueCrypt data area with Python's
# `cryptography` (OpenSSL through another binding), written out as a raw image for debugfs/fsck.
# usage: decrypt-volume.py FILE KEYHEX DATA_OFFSET SIZE SECTOR_SIZE IV_OFFSET MODE OUT
#   MODE: aes-xts-plain64 | aes-cbc-essiv:sha256; the IV of sector s is IV_OFFSET + s * SECTOR_SIZE / 512.
import hashlib
import sys

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

path, key_hex, offset, size, sector, iv_offset, mode, out_path = sys.argv[1:9]
key = bytes.fromhex(key_hex)
offset, size, sector, iv_offset = int(offset), int(size), int(sector), int(iv_offset)
essiv = None
if mode == 'aes-cbc-essiv:sha256':
    essiv = Cipher(algorithms.AES(hashlib.sha256(key).digest()), modes.ECB())
with open(path, 'rb') as source, open(out_path, 'wb') as out:
    source.seek(offset)
    for s in range(size // sector):
        chunk = source.read(sector)
        iv_number = (iv_offset + s * sector // 512).to_bytes(16, 'little')
        if essiv is None:
            decryptor = Cipher(algorithms.AES(key), modes.XTS(iv_number)).decryptor()
        else:
            encryptor = essiv.encryptor()
            iv = encryptor.update(iv_number) + encryptor.finalize()
            decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        out.write(decryptor.update(chunk) + decryptor.finalize())
