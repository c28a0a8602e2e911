//! The primitives LUKS is built from: sector ciphers (AES in XTS or CBC
//! mode with the IV generators dm-crypt names `plain`, `plain64` and
//! `essiv:sha256`), the key derivation functions of keyslots (PBKDF2,
//! Argon2i, Argon2id), and the anti-forensic information splitter's merge.
//! The block cipher, hashes and KDFs are RustCrypto's; modes and the
//! on-disk conventions are ours.

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use sha2::Digest;
use zeroize::Zeroizing;

/// Key bytes kept in memory only, wiped when dropped.
pub type Secret = Zeroizing<Vec<u8>>;

/// One AES key schedule of any key length.
#[derive(Clone)]
enum Aes {
    A128(aes::Aes128),
    A192(aes::Aes192),
    A256(aes::Aes256),
}

impl Aes {
    fn new(key: &[u8]) -> Option<Aes> {
        match key.len() {
            16 => aes::Aes128::new_from_slice(key).ok().map(Aes::A128),
            24 => aes::Aes192::new_from_slice(key).ok().map(Aes::A192),
            32 => aes::Aes256::new_from_slice(key).ok().map(Aes::A256),
            _ => None,
        }
    }

    /// Decrypt whole 16-byte blocks in place (a tail shorter than a block is left).
    fn decrypt(&self, buf: &mut [u8]) {
        let (blocks, _) = aes::Block::slice_as_chunks_mut(buf);
        match self {
            Aes::A128(c) => c.decrypt_blocks(blocks),
            Aes::A192(c) => c.decrypt_blocks(blocks),
            Aes::A256(c) => c.decrypt_blocks(blocks),
        }
    }

    /// Encrypt whole 16-byte blocks in place.
    fn encrypt(&self, buf: &mut [u8]) {
        let (blocks, _) = aes::Block::slice_as_chunks_mut(buf);
        match self {
            Aes::A128(c) => c.encrypt_blocks(blocks),
            Aes::A192(c) => c.encrypt_blocks(blocks),
            Aes::A256(c) => c.encrypt_blocks(blocks),
        }
    }
}

/// How a sector's IV comes from its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IvGen {
    /// The low 32 bits, little-endian.
    Plain,
    /// The 64 bits, little-endian.
    Plain64,
    /// `plain64` encrypted with AES under SHA-256 of the key.
    EssivSha256,
}

#[derive(Clone)]
enum Mode {
    Xts { data: Aes, tweak: Aes },
    Cbc { key: Aes, essiv: Option<Aes> },
}

/// A dm-crypt sector cipher with its key: `aes-xts-plain64`,
/// `aes-cbc-essiv:sha256`, `aes-xts-plain`, `aes-cbc-plain64`...
#[derive(Clone)]
pub struct SectorCipher {
    mode: Mode,
    iv: IvGen,
    /// How far the IV's sector number moves from one sector to the next:
    /// 1, or for a LUKS2 segment of larger sectors their size in 512-byte
    /// units (cryptsetup does not set dm-crypt's `iv_large_sectors` for
    /// LUKS2, so IVs count 512-byte sectors).
    step: u64,
}

/// The ciphers understood, for messages.
pub const SUPPORTED: &str =
    "aes-xts-plain64, aes-xts-plain, aes-cbc-essiv:sha256, aes-cbc-plain64, aes-cbc-plain";

/// Whether `spec` (`aes-xts-plain64`) names a cipher this module reads,
/// and the key lengths (bytes) it takes; `Err` says why not.
pub fn check_spec(spec: &str, key_bytes: usize) -> Result<(), String> {
    let (_, _) = parse_spec(spec)?;
    let ok = if spec.starts_with("aes-xts-") {
        matches!(key_bytes, 32 | 48 | 64)
    } else {
        matches!(key_bytes, 16 | 24 | 32)
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "cipher {spec} with a {}-bit key is not supported",
            key_bytes.saturating_mul(8)
        ))
    }
}

fn parse_spec(spec: &str) -> Result<(bool, IvGen), String> {
    let unsupported = || format!("cipher {spec} not supported (vmrescue reads {SUPPORTED})");
    let rest = spec.strip_prefix("aes-").ok_or_else(unsupported)?;
    let (mode, iv) = rest.split_once('-').ok_or_else(unsupported)?;
    let xts = match mode {
        "xts" => true,
        "cbc" => false,
        _ => return Err(unsupported()),
    };
    let iv = match iv {
        "plain" => IvGen::Plain,
        "plain64" => IvGen::Plain64,
        "essiv:sha256" if !xts => IvGen::EssivSha256,
        _ => return Err(unsupported()),
    };
    Ok((xts, iv))
}

impl SectorCipher {
    /// The cipher `spec` with `key`; an error names what is not supported.
    pub fn new(spec: &str, key: &[u8]) -> Result<SectorCipher, String> {
        check_spec(spec, key.len())?;
        let (xts, iv) = parse_spec(spec)?;
        let bad = || format!("cipher {spec}: bad key length {}", key.len());
        let mode = if xts {
            let (a, b) = key.split_at(key.len() / 2);
            Mode::Xts {
                data: Aes::new(a).ok_or_else(bad)?,
                tweak: Aes::new(b).ok_or_else(bad)?,
            }
        } else {
            let essiv = if iv == IvGen::EssivSha256 {
                let salt = Zeroizing::new(sha2::Sha256::digest(key).to_vec());
                Some(Aes::new(&salt).ok_or_else(bad)?)
            } else {
                None
            };
            Mode::Cbc {
                key: Aes::new(key).ok_or_else(bad)?,
                essiv,
            }
        };
        Ok(SectorCipher { mode, iv, step: 1 })
    }

    /// The same cipher with IV sector numbers `step` apart from one
    /// sector to the next (see the field; 0 counts as 1).
    pub fn with_iv_step(mut self, step: u64) -> SectorCipher {
        self.step = step.max(1);
        self
    }

    fn iv(&self, sector: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        match self.iv {
            IvGen::Plain => iv[..4].copy_from_slice(&(sector as u32).to_le_bytes()),
            IvGen::Plain64 | IvGen::EssivSha256 => iv[..8].copy_from_slice(&sector.to_le_bytes()),
        }
        if let Mode::Cbc { essiv: Some(e), .. } = &self.mode {
            e.encrypt(&mut iv);
        }
        iv
    }

    /// Decrypt `buf`, consecutive sectors of `sector_size` bytes (a
    /// multiple of 16, at most 4096) numbered from `first` (the IV's
    /// sector number), each the IV step further. A tail shorter than a
    /// sector is left as it is.
    ///
    /// XTS works on [`BATCH`] bytes at a time: the tweaks of all their
    /// sectors are encrypted in one call and the data in one call, so the
    /// AES code keeps its pipeline full; nothing is allocated.
    pub fn decrypt_sectors(&self, buf: &mut [u8], sector_size: usize, first: u64) {
        let sector_size = sector_size.clamp(16, 4096) & !15;
        match &self.mode {
            Mode::Xts { data, tweak } => {
                let mut scratch = [0u8; BATCH];
                let mut ivs = [0u8; BATCH_SECTORS * 16];
                let per = (BATCH / sector_size).clamp(1, BATCH_SECTORS);
                let mut n = first;
                for group in buf.chunks_mut(per * sector_size) {
                    let count = group.len() / sector_size;
                    if count == 0 {
                        break;
                    }
                    let group = &mut group[..count * sector_size];
                    let ivs = &mut ivs[..count * 16];
                    for iv in ivs.chunks_exact_mut(16) {
                        iv.copy_from_slice(&self.iv(n));
                        n = n.wrapping_add(self.step);
                    }
                    tweak.encrypt(ivs);
                    let scratch = &mut scratch[..group.len()];
                    for (iv, tweaks) in ivs
                        .chunks_exact(16)
                        .zip(scratch.chunks_exact_mut(sector_size))
                    {
                        let mut t = u128::from_le_bytes(iv.try_into().unwrap_or([0; 16]));
                        for tb in tweaks.chunks_exact_mut(16) {
                            tb.copy_from_slice(&t.to_le_bytes());
                            let carry = if t >> 127 == 1 { 0x87 } else { 0 };
                            t = (t << 1) ^ carry;
                        }
                    }
                    xor(group, scratch);
                    data.decrypt(group);
                    xor(group, scratch);
                }
            }
            Mode::Cbc { key, .. } => {
                let mut scratch = [0u8; 4096];
                for (i, s) in buf.chunks_exact_mut(sector_size).enumerate() {
                    let iv = self.iv(first.wrapping_add((i as u64).wrapping_mul(self.step)));
                    let scratch = &mut scratch[..sector_size];
                    scratch[..16].copy_from_slice(&iv);
                    scratch[16..].copy_from_slice(&s[..sector_size - 16]);
                    key.decrypt(s);
                    xor(s, scratch);
                }
            }
        }
    }

    /// Encrypt, the inverse of [`SectorCipher::decrypt_sectors`] (tests,
    /// and images made in memory).
    pub fn encrypt_sectors(&self, buf: &mut [u8], sector_size: usize, first: u64) {
        let sector_size = sector_size.clamp(16, 4096) & !15;
        for (i, s) in buf.chunks_exact_mut(sector_size).enumerate() {
            let iv = self.iv(first.wrapping_add((i as u64).wrapping_mul(self.step)));
            match &self.mode {
                Mode::Xts { data, tweak } => {
                    let mut t = iv;
                    tweak.encrypt(&mut t);
                    let mut t = u128::from_le_bytes(t);
                    for b in s.chunks_exact_mut(16) {
                        xor(b, &t.to_le_bytes());
                        data.encrypt(b);
                        xor(b, &t.to_le_bytes());
                        let carry = if t >> 127 == 1 { 0x87 } else { 0 };
                        t = (t << 1) ^ carry;
                    }
                }
                Mode::Cbc { key, .. } => {
                    let mut prev = iv;
                    for b in s.chunks_exact_mut(16) {
                        xor(b, &prev);
                        key.encrypt(b);
                        prev.copy_from_slice(b);
                    }
                }
            }
        }
    }
}

/// How many bytes [`SectorCipher::decrypt_sectors`] decrypts in one AES call.
const BATCH: usize = 16 << 10;
/// The most sectors in one batch (16-byte sectors would be 1024).
const BATCH_SECTORS: usize = 64;

/// `a ^= b`, 16 bytes at a time (then byte by byte for a tail).
fn xor(a: &mut [u8], b: &[u8]) {
    let mut ca = a.chunks_exact_mut(16);
    let mut cb = b.chunks_exact(16);
    for (x, y) in (&mut ca).zip(&mut cb) {
        let v = u128::from_ne_bytes(x.try_into().unwrap_or([0; 16]))
            ^ u128::from_ne_bytes(y.try_into().unwrap_or([0; 16]));
        x.copy_from_slice(&v.to_ne_bytes());
    }
    for (x, y) in ca.into_remainder().iter_mut().zip(cb.remainder()) {
        *x ^= *y;
    }
}

/// A hash LUKS names (`sha256`): PBKDF2's PRF and the AF splitter's diffusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SHA-1.
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Hash {
    /// The hash named `name` as cryptsetup spells it; `Err` names it.
    pub fn from_name(name: &str) -> Result<Hash, String> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "sha1" => Hash::Sha1,
            "sha224" => Hash::Sha224,
            "sha256" => Hash::Sha256,
            "sha384" => Hash::Sha384,
            "sha512" => Hash::Sha512,
            _ => {
                return Err(format!(
                    "hash {name} not supported (vmrescue reads sha1, sha224, sha256, sha384, sha512)"
                ));
            }
        })
    }

    fn len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha224 => 28,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            Hash::Sha1 => run::<sha1::Sha1>(parts),
            Hash::Sha224 => run::<sha2::Sha224>(parts),
            Hash::Sha256 => run::<sha2::Sha256>(parts),
            Hash::Sha384 => run::<sha2::Sha384>(parts),
            Hash::Sha512 => run::<sha2::Sha512>(parts),
        }
    }

    /// PBKDF2-HMAC with this hash.
    pub fn pbkdf2(self, pass: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
        match self {
            Hash::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pass, salt, iterations, out),
            Hash::Sha224 => pbkdf2::pbkdf2_hmac::<sha2::Sha224>(pass, salt, iterations, out),
            Hash::Sha256 => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pass, salt, iterations, out),
            Hash::Sha384 => pbkdf2::pbkdf2_hmac::<sha2::Sha384>(pass, salt, iterations, out),
            Hash::Sha512 => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(pass, salt, iterations, out),
        }
    }
}

/// Merge the anti-forensic stripes of `material` (`stripes` × `key_len`
/// bytes) into the key they hide (LUKS's AF-merge: every stripe but the
/// last is XORed in and diffused with `hash`; the last is XORed in).
pub fn af_merge(material: &[u8], key_len: usize, stripes: usize, hash: Hash) -> Option<Secret> {
    if key_len == 0 || stripes == 0 || material.len() < key_len.checked_mul(stripes)? {
        return None;
    }
    let mut d = Zeroizing::new(vec![0u8; key_len]);
    for (i, stripe) in material.chunks_exact(key_len).take(stripes).enumerate() {
        xor(&mut d, stripe);
        if i + 1 < stripes {
            diffuse(&mut d, hash);
        }
    }
    Some(d)
}

/// LUKS's diffusion: each hash-sized piece replaced by the hash of its
/// index (big-endian 32 bits) and itself, cut to the piece's length.
fn diffuse(buf: &mut [u8], hash: Hash) {
    let n = hash.len();
    for (i, piece) in buf.chunks_mut(n).enumerate() {
        let h = Zeroizing::new(hash.digest(&[&(i as u32).to_be_bytes(), piece]));
        let len = piece.len();
        piece.copy_from_slice(&h[..len]);
    }
}

/// Split `key` into `stripes` stripes (the inverse of [`af_merge`]), with
/// `random` as the first `stripes - 1` stripes: for tests and images made
/// in memory.
pub fn af_split(key: &[u8], random: &[u8], stripes: usize, hash: Hash) -> Vec<u8> {
    let Some(len) = stripes
        .checked_sub(1)
        .and_then(|n| n.checked_mul(key.len()))
        .filter(|&n| n <= random.len() && !key.is_empty())
    else {
        return Vec::new();
    };
    let mut out = random[..len].to_vec();
    let mut d = vec![0u8; key.len()];
    for stripe in out.chunks_exact(key.len()) {
        xor(&mut d, stripe);
        diffuse(&mut d, hash);
    }
    xor(&mut d, key);
    out.extend_from_slice(&d);
    out
}

/// An Argon2 variant of a LUKS2 keyslot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Argon2Type {
    /// `argon2i`.
    I,
    /// `argon2id`.
    Id,
}

/// Argon2 (version 1.3) with `memory` KiB, `time` passes and `lanes`
/// lanes; `Err` when the parameters are out of Argon2's bounds.
pub fn argon2(
    kind: Argon2Type,
    pass: &[u8],
    salt: &[u8],
    time: u32,
    memory: u32,
    lanes: u32,
    out: &mut [u8],
) -> Result<(), String> {
    let params = argon2::Params::new(memory, time, lanes, Some(out.len())).map_err(|e| {
        format!("argon2 parameters (memory {memory} KiB, time {time}, {lanes} lanes): {e}")
    })?;
    let alg = match kind {
        Argon2Type::I => argon2::Algorithm::Argon2i,
        Argon2Type::Id => argon2::Algorithm::Argon2id,
    };
    argon2::Argon2::new(alg, argon2::Version::V0x13, params)
        .hash_password_into(pass, salt, out)
        .map_err(|e| format!("argon2: {e}"))
}

/// Compare in time independent of where the first difference is.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// IEEE 1619 XTS-AES-128 vector 1: all-zero keys, data unit 0.
    #[test]
    fn xts_ieee1619_vector_1() {
        let c = SectorCipher::new("aes-xts-plain64", &[0u8; 32]).unwrap();
        let mut buf = hex("917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e");
        c.decrypt_sectors(&mut buf, 32, 0);
        assert_eq!(buf, vec![0u8; 32]);
    }

    /// IEEE 1619 vector 2: keys 11…/22…, data unit 0x3333333333, plaintext 44….
    #[test]
    fn xts_ieee1619_vector_2() {
        let mut key = vec![0x11u8; 16];
        key.extend_from_slice(&[0x22u8; 16]);
        let c = SectorCipher::new("aes-xts-plain64", &key).unwrap();
        let mut buf = hex("c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0");
        c.decrypt_sectors(&mut buf, 32, 0x33_3333_3333);
        assert_eq!(buf, vec![0x44u8; 32]);
    }

    #[test]
    fn round_trips() {
        for spec in [
            "aes-xts-plain64",
            "aes-xts-plain",
            "aes-cbc-essiv:sha256",
            "aes-cbc-plain64",
        ] {
            let key: Vec<u8> = (0..if spec.contains("xts") { 64 } else { 32 }).collect();
            let c = SectorCipher::new(spec, &key).unwrap();
            let plain: Vec<u8> = (0..8192u32).map(|i| (i * 7) as u8).collect();
            let mut buf = plain.clone();
            c.encrypt_sectors(&mut buf, 4096, 9);
            assert_ne!(buf, plain);
            c.decrypt_sectors(&mut buf, 4096, 9);
            assert_eq!(buf, plain, "{spec}");
        }
    }

    /// Decrypting many sectors in one call (in 16 KiB batches) gives what
    /// each sector encrypted alone gives back; a tail shorter than a sector
    /// is left as it is.
    #[test]
    fn batches_match_sector_by_sector() {
        let key: Vec<u8> = (0..64).map(|i| i * 3).collect();
        let c = SectorCipher::new("aes-xts-plain64", &key).unwrap();
        for sector in [16usize, 512, 4096] {
            let n = 37;
            let plain: Vec<u8> = (0..n * sector + 10).map(|i| (i * 13 % 251) as u8).collect();
            let mut buf = plain.clone();
            for (i, s) in buf.chunks_exact_mut(sector).enumerate() {
                c.encrypt_sectors(s, sector, 1000 + i as u64);
            }
            c.decrypt_sectors(&mut buf, sector, 1000);
            assert_eq!(buf, plain, "{sector}-byte sectors");
        }
    }

    #[test]
    fn unknown_cipher_named() {
        let e = SectorCipher::new("serpent-xts-plain64", &[0u8; 64])
            .err()
            .unwrap();
        assert!(
            e.contains("cipher serpent-xts-plain64 not supported"),
            "{e}"
        );
    }

    #[test]
    fn af_split_merge() {
        let key: Vec<u8> = (0..64).collect();
        let random: Vec<u8> = (0..64 * 99).map(|i| (i % 251) as u8).collect();
        let m = af_split(&key, &random, 100, Hash::Sha256);
        assert_eq!(m.len(), 6400);
        assert_eq!(*af_merge(&m, 64, 100, Hash::Sha256).unwrap(), key);
        assert!(af_merge(&m, 64, 101, Hash::Sha256).is_none());
    }
}
