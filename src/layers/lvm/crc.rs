//! The checksum LVM2 puts on its label, metadata area header and metadata text.
//!
//! It is the reflected CRC-32 of polynomial 0xEDB88320 (the zlib table),
//! started from `0xf597a6cf` and returned without the final inversion.

/// The starting value of every LVM2 checksum (`INITIAL_CRC` in lvm2).
pub const INITIAL_CRC: u32 = 0xf597_a6cf;

/// Continue an LVM2 checksum `crc` over `data` (start with [`INITIAL_CRC`]).
pub fn calc_crc(crc: u32, data: &[u8]) -> u32 {
    // crc32fast keeps its state inverted and inverts again when finishing;
    // LVM's state is the raw register, so invert on the way in and out.
    let mut h = crc32fast::Hasher::new_with_initial(!crc);
    h.update(data);
    !h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-at-a-time reference: the definition, independent of crc32fast.
    fn reference(mut crc: u32, data: &[u8]) -> u32 {
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn matches_the_definition() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in [0, 1, 5, 16, 17, 511, 1000] {
            assert_eq!(
                calc_crc(INITIAL_CRC, &data[..len]),
                reference(INITIAL_CRC, &data[..len])
            );
        }
        // Continuing over two pieces equals one pass over both.
        let a = calc_crc(INITIAL_CRC, &data[..300]);
        assert_eq!(calc_crc(a, &data[300..]), calc_crc(INITIAL_CRC, &data));
    }
}
