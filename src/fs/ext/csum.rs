//! The checksums ext4 and JBD2 use, computed the way the kernel does.
//!
//! The kernel's `crc32c()` takes a seed and returns the raw register: no
//! inversion on the way in or out. ext4 seeds its metadata checksums with
//! `crc32c(~0, uuid)` (or `s_checksum_seed`), so every function here works
//! on that raw form. `gdt_csum` uses the kernel's `crc16()` (polynomial
//! 0x8005, bit-reflected, no final inversion), and JBD2 checksum v1 uses the
//! big-endian `crc32_be()` (polynomial 0x04C11DB7, not reflected).

/// The kernel's `crc32c(seed, data)`: CRC-32C continued from the raw register `seed`.
pub fn crc32c(seed: u32, data: &[u8]) -> u32 {
    // `crc32c_append` inverts on entry and exit; undo both to get the raw register.
    !crc32c::crc32c_append(!seed, data)
}

const fn crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static CRC16: [u16; 256] = crc16_table();

/// The kernel's `crc16(seed, data)` (CRC-16/ARC register, reflected 0x8005).
pub fn crc16(seed: u16, data: &[u8]) -> u16 {
    let mut crc = seed;
    for &b in data {
        crc = (crc >> 8) ^ CRC16[((crc ^ u16::from(b)) & 0xff) as usize];
    }
    crc
}

const fn crc32_be_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

static CRC32_BE: [u32; 256] = crc32_be_table();

/// The kernel's `crc32_be(seed, data)` (JBD2 checksum v1 of a transaction's blocks).
pub fn crc32_be(seed: u32, data: &[u8]) -> u32 {
    let mut crc = seed;
    for &b in data {
        crc = (crc << 8) ^ CRC32_BE[(((crc >> 24) as u8) ^ b) as usize];
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // CRC-32C of "123456789" is 0xE3069283 with the usual inversions.
        assert_eq!(!crc32c(!0, b"123456789"), 0xE306_9283);
        // CRC-16/ARC of "123456789" is 0xBB3D (seed 0).
        assert_eq!(crc16(0, b"123456789"), 0xBB3D);
        // CRC-32/MPEG-2 (seed ~0, no final xor) of "123456789" is 0x0376E6E7.
        assert_eq!(crc32_be(!0, b"123456789"), 0x0376_E6E7);
        // Chaining equals one pass.
        assert_eq!(
            crc32c(crc32c(7, b"1234"), b"56789"),
            crc32c(7, b"123456789")
        );
    }
}
