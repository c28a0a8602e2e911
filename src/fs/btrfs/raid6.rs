//! RAID6 recovery in GF(2^8) (polynomial 0x11d, generator 2, as Linux's
//! RAID6): P is the XOR of the data stripes, Q the sum of g^i · D_i. One
//! or two missing data stripes come back from the others, P and Q.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

/// a · b in GF(2^8).
pub fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut r = 0u8;
    for _ in 0..8 {
        if b & 1 != 0 {
            r ^= a;
        }
        let hi = a & 0x80 != 0;
        a <<= 1;
        if hi {
            a ^= 0x1d;
        }
        b >>= 1;
    }
    r
}

/// g^n.
pub fn pow2(n: u64) -> u8 {
    let mut r = 1u8;
    for _ in 0..n.checked_rem(255).unwrap_or(0) {
        r = mul(r, 2);
    }
    r
}

/// The inverse of a non-zero `a` (a^254); 0 for 0.
pub fn inv(a: u8) -> u8 {
    let mut r = 1u8;
    for _ in 0..254 {
        r = mul(r, a);
    }
    r
}

/// `out ^= k · src`, bytewise.
pub fn mul_xor(out: &mut [u8], src: &[u8], k: u8) {
    let mut t = [0u8; 256];
    for (i, v) in t.iter_mut().enumerate() {
        *v = mul(u8::try_from(i).unwrap_or(0), k);
    }
    for (o, s) in out.iter_mut().zip(src) {
        *o ^= t.get(usize::from(*s)).copied().unwrap_or(0);
    }
}

/// `buf = k · buf`, bytewise.
pub fn scale(buf: &mut [u8], k: u8) {
    let mut t = [0u8; 256];
    for (i, v) in t.iter_mut().enumerate() {
        *v = mul(u8::try_from(i).unwrap_or(0), k);
    }
    for b in buf.iter_mut() {
        *b = t.get(usize::from(*b)).copied().unwrap_or(0);
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn field_facts() {
        assert_eq!(mul(2, 0x80), 0x1d);
        assert_eq!(pow2(8), 0x1d);
        assert_eq!(pow2(255), 1);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "{a}");
        }
    }

    #[test]
    fn two_missing_data_stripes_come_back() {
        let d: Vec<Vec<u8>> = (0..4u8)
            .map(|i| {
                (0..64u8)
                    .map(|j| j.wrapping_mul(37).wrapping_add(i * 11))
                    .collect()
            })
            .collect();
        let mut p = vec![0u8; 64];
        let mut q = vec![0u8; 64];
        for (i, di) in d.iter().enumerate() {
            mul_xor(&mut p, di, 1);
            mul_xor(&mut q, di, pow2(i as u64));
        }
        // Lose 1 and 3: Pxy = P ^ D0 ^ D2, Qxy = Q ^ g^0 D0 ^ g^2 D2.
        let (x, y) = (1u64, 3u64);
        let mut pxy = p.clone();
        let mut qxy = q.clone();
        for i in [0usize, 2] {
            mul_xor(&mut pxy, &d[i], 1);
            mul_xor(&mut qxy, &d[i], pow2(i as u64));
        }
        // Dx = (g^y Pxy ^ Qxy) / (g^x ^ g^y).
        let mut dx = qxy.clone();
        mul_xor(&mut dx, &pxy, pow2(y));
        scale(&mut dx, inv(pow2(x) ^ pow2(y)));
        assert_eq!(dx, d[1]);
    }
}
