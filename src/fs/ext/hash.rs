//! Directory index (htree) name hashes: legacy, half-MD4 and TEA, each with
//! signed or unsigned characters, seeded with `s_hash_seed`.

/// `dx_root_info.hash_version` values.
pub const DX_HASH_LEGACY: u8 = 0;
/// Half-MD4.
pub const DX_HASH_HALF_MD4: u8 = 1;
/// TEA.
pub const DX_HASH_TEA: u8 = 2;
/// Legacy, unsigned chars.
pub const DX_HASH_LEGACY_UNSIGNED: u8 = 3;
/// Half-MD4, unsigned chars.
pub const DX_HASH_HALF_MD4_UNSIGNED: u8 = 4;
/// TEA, unsigned chars.
pub const DX_HASH_TEA_UNSIGNED: u8 = 5;

const DEFAULT_SEED: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// Widen a name byte the way the hash version says (sign-extended or not).
fn widen(b: u8, signed: bool) -> u32 {
    if signed {
        b as i8 as i32 as u32
    } else {
        u32::from(b)
    }
}

fn legacy(name: &[u8], signed: bool) -> u32 {
    let (mut h0, mut h1) = (0x12a3_fe2du32, 0x37ab_e8f9u32);
    for &b in name {
        let mut h = h1.wrapping_add(h0 ^ widen(b, signed).wrapping_mul(7_152_373));
        if h & 0x8000_0000 != 0 {
            h = h.wrapping_sub(0x7fff_ffff);
        }
        h1 = h0;
        h0 = h;
    }
    h0 << 1
}

/// Pack up to `num * 4` bytes of `msg` into `num` words, padded with the length.
fn to_words(msg: &[u8], num: usize, signed: bool) -> [u32; 8] {
    let len = msg.len() as u32;
    let mut pad = len | (len << 8);
    pad |= pad << 16;
    let mut out = [pad; 8];
    let take = msg.len().min(num * 4);
    let mut val = pad;
    let mut w = 0usize;
    for (i, &b) in msg[..take].iter().enumerate() {
        if i % 4 == 0 {
            val = pad;
        }
        val = widen(b, signed).wrapping_add(val << 8);
        if i % 4 == 3 {
            out[w] = val;
            w += 1;
            val = pad;
        }
    }
    if w < num {
        out[w] = val;
    }
    out
}

fn tea(buf: &mut [u32; 4], k: &[u32; 8]) {
    let (mut b0, mut b1) = (buf[0], buf[1]);
    let mut sum = 0u32;
    for _ in 0..16 {
        sum = sum.wrapping_add(0x9E37_79B9);
        b0 = b0.wrapping_add(
            (b1 << 4).wrapping_add(k[0]) ^ b1.wrapping_add(sum) ^ (b1 >> 5).wrapping_add(k[1]),
        );
        b1 = b1.wrapping_add(
            (b0 << 4).wrapping_add(k[2]) ^ b0.wrapping_add(sum) ^ (b0 >> 5).wrapping_add(k[3]),
        );
    }
    buf[0] = buf[0].wrapping_add(b0);
    buf[1] = buf[1].wrapping_add(b1);
}

fn half_md4(buf: &mut [u32; 4], x: &[u32; 8]) {
    const K2: u32 = 0o13240474631;
    const K3: u32 = 0o15666365641;
    let f = |x: u32, y: u32, z: u32| z ^ (x & (y ^ z));
    let g = |x: u32, y: u32, z: u32| (x & y).wrapping_add((x ^ y) & z);
    let h = |x: u32, y: u32, z: u32| x ^ y ^ z;
    let [mut a, mut b, mut c, mut d] = *buf;
    // One MD4 step: v = rotl(v + fun(p, q, r) + word, s).
    macro_rules! r {
        ($fun:expr, $v:ident, $p:ident, $q:ident, $r:ident, $w:expr, $s:expr) => {
            $v = $v
                .wrapping_add($fun($p, $q, $r))
                .wrapping_add($w)
                .rotate_left($s)
        };
    }
    for i in [0usize, 4] {
        r!(f, a, b, c, d, x[i], 3);
        r!(f, d, a, b, c, x[i + 1], 7);
        r!(f, c, d, a, b, x[i + 2], 11);
        r!(f, b, c, d, a, x[i + 3], 19);
    }
    for i in [0usize, 1] {
        let k = |j: usize| x[j].wrapping_add(K2);
        r!(g, a, b, c, d, k(1 - i), 3);
        r!(g, d, a, b, c, k(3 - i), 5);
        r!(g, c, d, a, b, k(5 - i), 9);
        r!(g, b, c, d, a, k(7 - i), 13);
    }
    for i in [0usize, 1] {
        let k = |j: usize| x[j].wrapping_add(K3);
        r!(h, a, b, c, d, k(3 - 2 * i), 3);
        r!(h, d, a, b, c, k(7 - 2 * i), 9);
        r!(h, c, d, a, b, k(2 - 2 * i), 11);
        r!(h, b, c, d, a, k(6 - 2 * i), 15);
    }
    buf[0] = buf[0].wrapping_add(a);
    buf[1] = buf[1].wrapping_add(b);
    buf[2] = buf[2].wrapping_add(c);
    buf[3] = buf[3].wrapping_add(d);
}

/// The major hash of `name` for `version`, or `None` for versions not implemented here.
pub fn dx_hash(name: &[u8], version: u8, seed: [u32; 4]) -> Option<u32> {
    let mut buf = if seed.iter().all(|&w| w == 0) {
        DEFAULT_SEED
    } else {
        seed
    };
    let hash = match version {
        DX_HASH_LEGACY | DX_HASH_LEGACY_UNSIGNED => legacy(name, version == DX_HASH_LEGACY),
        DX_HASH_HALF_MD4 | DX_HASH_HALF_MD4_UNSIGNED => {
            let signed = version == DX_HASH_HALF_MD4;
            let mut rest = name;
            while !rest.is_empty() {
                half_md4(&mut buf, &to_words(rest, 8, signed));
                rest = &rest[rest.len().min(32)..];
            }
            buf[1]
        }
        DX_HASH_TEA | DX_HASH_TEA_UNSIGNED => {
            let signed = version == DX_HASH_TEA;
            let mut rest = name;
            while !rest.is_empty() {
                tea(&mut buf, &to_words(rest, 4, signed));
                rest = &rest[rest.len().min(16)..];
            }
            buf[0]
        }
        _ => return None,
    };
    let hash = hash & !1;
    Some(if hash == 0x7fff_ffff << 1 {
        0x7fff_fffe << 1
    } else {
        hash
    })
}
