//! The primitives LUKS is built from: sector ciphers (AES in XTS or CBC
//! mode with the IV generators dm-crypt names `plain`, `plain64` and
//! `essiv:sha256`), the key derivation functions of keyslots (PBKDF2,
//! Argon2i, Argon2id), and the anti-forensic information splitter's merge.
//! The block cipher, hashes and KDFs are RustCrypto's; modes and the
//! on-disk conventions are ours.

use aes::Block;
use aes::cipher::consts::U16;
use aes::cipher::typenum::Unsigned;
use aes::cipher::{
    Array, BlockCipherDecBackend, BlockCipherDecClosure, BlockCipherDecrypt, BlockCipherEncBackend,
    BlockCipherEncClosure, BlockCipherEncrypt, BlockSizeUser, KeyInit, ParBlocks,
};
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

    /// Run `f` with this key's decryption backend (the widest the CPU has).
    fn decrypt_with(&self, f: impl BlockCipherDecClosure<BlockSize = U16>) {
        match self {
            Aes::A128(c) => c.decrypt_with_backend(f),
            Aes::A192(c) => c.decrypt_with_backend(f),
            Aes::A256(c) => c.decrypt_with_backend(f),
        }
    }

    /// Encrypt whole blocks in place, a short rest padded to the backend's
    /// parallel width (one wide call costs less than a few single ones).
    fn encrypt_blocks(&self, blocks: &mut [Block]) {
        let f = EncryptAll(blocks);
        match self {
            Aes::A128(c) => c.encrypt_with_backend(f),
            Aes::A192(c) => c.encrypt_with_backend(f),
            Aes::A256(c) => c.encrypt_with_backend(f),
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

    /// The IV of `sector` before ESSIV's encryption.
    fn plain_iv(&self, sector: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        match self.iv {
            IvGen::Plain => iv[..4].copy_from_slice(&(sector as u32).to_le_bytes()),
            IvGen::Plain64 | IvGen::EssivSha256 => iv[..8].copy_from_slice(&sector.to_le_bytes()),
        }
        iv
    }

    fn iv(&self, sector: u64) -> [u8; 16] {
        let mut iv = self.plain_iv(sector);
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
    /// Sectors go [`GROUP`] at a time: their IVs (XTS: tweaks) are
    /// encrypted in one AES call, then one pass over the data inside the
    /// AES backend decrypts it a parallel batch at a time (64 blocks with
    /// VAES-512), the XTS tweaks or CBC chaining blocks made and xored in
    /// while the batch is in L1. Nothing is allocated.
    pub fn decrypt_sectors(&self, buf: &mut [u8], sector_size: usize, first: u64) {
        let per_sector = (sector_size.clamp(16, 4096) & !15) / 16;
        let (blocks, _) = Block::slice_as_chunks_mut(buf);
        let whole = blocks.len() / per_sector * per_sector;
        let mut ivs = [Block::default(); GROUP];
        let mut n = first;
        for data in blocks[..whole].chunks_mut(GROUP * per_sector) {
            let ivs = &mut ivs[..data.len() / per_sector];
            for iv in ivs.iter_mut() {
                *iv = Block::from(self.plain_iv(n));
                n = n.wrapping_add(self.step);
            }
            match &self.mode {
                Mode::Xts { data: key, tweak } => {
                    tweak.encrypt_blocks(ivs);
                    key.decrypt_with(OnePass {
                        data,
                        per_sector,
                        ivs,
                        xts: true,
                    });
                }
                Mode::Cbc { key, essiv } => {
                    if let Some(e) = essiv {
                        e.encrypt_blocks(ivs);
                    }
                    key.decrypt_with(OnePass {
                        data,
                        per_sector,
                        ivs,
                        xts: false,
                    });
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

/// How many sectors [`SectorCipher::decrypt_sectors`] takes at a time:
/// their IVs are one parallel AES call (64 blocks with VAES-512).
const GROUP: usize = 64;

/// Encrypt whole blocks in place with the backend given: full parallel
/// batches, then a rest of more than two blocks padded to one.
struct EncryptAll<'a>(&'a mut [Block]);

impl BlockSizeUser for EncryptAll<'_> {
    type BlockSize = U16;
}

impl BlockCipherEncClosure for EncryptAll<'_> {
    #[inline(always)]
    fn call<B: BlockCipherEncBackend<BlockSize = U16>>(self, backend: &B) {
        let (full, rest) = ParBlocks::<B>::slice_as_chunks_mut(self.0);
        for par in full {
            backend.encrypt_par_blocks_inplace(par);
        }
        if rest.len() > 2 {
            let mut pad = ParBlocks::<B>::default();
            pad[..rest.len()].copy_from_slice(rest);
            backend.encrypt_par_blocks_inplace(&mut pad);
            rest.copy_from_slice(&pad[..rest.len()]);
        } else {
            for b in rest {
                backend.encrypt_block_inplace(b);
            }
        }
    }
}

/// Decrypt `batch` (at most the backend's parallel width) in place: in one
/// parallel call, a short batch padded (more than two blocks) or block by
/// block.
#[inline(always)]
fn decrypt_batch<B: BlockCipherDecBackend<BlockSize = U16>>(backend: &B, batch: &mut [Block]) {
    if let Ok(par) = <&mut ParBlocks<B>>::try_from(&mut *batch) {
        backend.decrypt_par_blocks_inplace(par);
    } else if batch.len() > 2 {
        let mut pad = ParBlocks::<B>::default();
        pad[..batch.len()].copy_from_slice(batch);
        backend.decrypt_par_blocks_inplace(&mut pad);
        batch.copy_from_slice(&pad[..batch.len()]);
    } else {
        for b in batch {
            backend.decrypt_block_inplace(b);
        }
    }
}

/// One pass of decryption over whole sectors in place, inside the AES
/// backend, a parallel batch at a time. XTS: the batch's tweaks are made (in
/// L1), xored in, the batch decrypted, the tweaks xored again. CBC: the
/// ciphertext is kept (in L1), the batch decrypted, each block xored with
/// the ciphertext before it (the sector's IV for its first).
struct OnePass<'a> {
    /// Whole sectors, as blocks.
    data: &'a mut [Block],
    /// Blocks in a sector.
    per_sector: usize,
    /// Each sector's IV; XTS: its first tweak (the IV encrypted with the
    /// tweak key).
    ivs: &'a [Block],
    /// XTS, else CBC.
    xts: bool,
}

impl BlockSizeUser for OnePass<'_> {
    type BlockSize = U16;
}

impl BlockCipherDecClosure for OnePass<'_> {
    #[inline(always)]
    fn call<B: BlockCipherDecBackend<BlockSize = U16>>(self, backend: &B) {
        if self.xts {
            self.xts(backend);
        } else {
            self.cbc(backend);
        }
    }
}

impl OnePass<'_> {
    #[inline(always)]
    fn xts<B: BlockCipherDecBackend<BlockSize = U16>>(self, backend: &B) {
        let mut tw = ParBlocks::<B>::default();
        let mut sectors = self.ivs.iter();
        // The next block's tweak, and the blocks left in its sector.
        let (mut t, mut left) = (0u128, 0usize);
        for batch in self.data.chunks_mut(B::ParBlocksSize::USIZE) {
            let tw = &mut tw[..batch.len()];
            let mut at = 0;
            while at < tw.len() {
                if left == 0 {
                    t = sectors.next().map_or(0, |b| u128::from_le_bytes(b.0));
                    left = self.per_sector;
                }
                let n = left.min(tw.len() - at);
                t = tweak_run(t, &mut tw[at..at + n]);
                at += n;
                left -= n;
            }
            xor_blocks(batch, tw);
            decrypt_batch(backend, batch);
            xor_blocks(batch, tw);
        }
    }

    #[inline(always)]
    fn cbc<B: BlockCipherDecBackend<BlockSize = U16>>(self, backend: &B) {
        let mut kept = ParBlocks::<B>::default();
        let mut ivs = self.ivs.iter();
        // The ciphertext block before the next one, and where that one is in its sector.
        let (mut prev, mut pos) = (Block::default(), 0usize);
        for batch in self.data.chunks_mut(B::ParBlocksSize::USIZE) {
            let kept = &mut kept[..batch.len()];
            kept.copy_from_slice(batch);
            decrypt_batch(backend, batch);
            for (b, c) in batch.iter_mut().zip(kept.iter()) {
                if pos == 0 {
                    prev = ivs.next().copied().unwrap_or_default();
                }
                xor_blocks(std::slice::from_mut(b), std::slice::from_ref(&prev));
                prev = *c;
                pos += 1;
                if pos == self.per_sector {
                    pos = 0;
                }
            }
        }
    }
}

/// Fill `out` with the tweaks of consecutive blocks, t·x⁰, t·x¹, t·x², … in
/// XTS's GF(2¹²⁸) (x¹²⁸ = x⁷ + x² + x + 1; byte 0's low bit is x⁰), and
/// return the one after them. Eight lanes, each stepping by x⁸, so no long
/// chain of dependent multiplications sets the speed; their low and high
/// 64-bit halves are kept apart, so the steps are vector code.
#[inline(always)]
fn tweak_run(t: u128, out: &mut [Block]) -> u128 {
    // Lane i starts at t·xⁱ: t shifted left by i, the bits out of the low
    // half into the high one, those out of the high half times x⁷ + x² + x
    // + 1 into the low one (`>> 1 >> (63 - i)` is `>> (64 - i)`, 0 for i = 0).
    let (tl, th) = (t as u64, (t >> 64) as u64);
    let mut lo = [0u64; 8];
    let mut hi = [0u64; 8];
    for (i, (l, h)) in (0u32..).zip(lo.iter_mut().zip(&mut hi)) {
        let top = th >> 1 >> (63 - i);
        *h = (th << i) | (tl >> 1 >> (63 - i));
        *l = (tl << i) ^ top ^ (top << 1) ^ (top << 2) ^ (top << 7);
    }
    let mut runs = out.chunks_exact_mut(8);
    for run in &mut runs {
        for ((o, l), h) in run.iter_mut().zip(&lo).zip(&hi) {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&l.to_le_bytes());
            b[8..].copy_from_slice(&h.to_le_bytes());
            *o = Array(b);
        }
        // Times x⁸: the same with i = 8 (the top byte reduced fits in 15 bits).
        for (l, h) in lo.iter_mut().zip(&mut hi) {
            let top = *h >> 56;
            *h = (*h << 8) | (*l >> 56);
            *l = (*l << 8) ^ top ^ (top << 1) ^ (top << 2) ^ (top << 7);
        }
    }
    let rest = runs.into_remainder();
    for ((o, l), h) in rest.iter_mut().zip(&lo).zip(&hi) {
        *o = Array((u128::from(*h) << 64 | u128::from(*l)).to_le_bytes());
    }
    // rest.len() < 8: that lane is the next block's tweak.
    u128::from(hi[rest.len()]) << 64 | u128::from(lo[rest.len()])
}

/// `a[i] ^= b[i]` for whole blocks.
#[inline(always)]
fn xor_blocks(a: &mut [Block], b: &[Block]) {
    let (a, b) = (
        Block::slice_as_flattened_mut(a),
        Block::slice_as_flattened(b),
    );
    for (x, y) in a.iter_mut().zip(b) {
        *x ^= y;
    }
}

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

    /// IEEE 1619 vector 10: XTS-AES-256, a 512-byte data unit (number
    /// 0xff) of bytes 0, 1, … 255 twice.
    #[test]
    fn xts_ieee1619_vector_10() {
        let key = hex(concat!(
            "2718281828459045235360287471352662497757247093699959574966967627",
            "3141592653589793238462643383279502884197169399375105820974944592",
        ));
        let c = SectorCipher::new("aes-xts-plain64", &key).unwrap();
        let mut buf = hex(concat!(
            "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b",
            "5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd",
            "5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0",
            "c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca",
            "2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0",
            "b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f",
            "93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec",
            "583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a",
            "84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1",
            "505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae",
            "9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29",
            "a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac",
            "6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f",
            "645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385",
            "1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa",
            "773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151",
        ));
        c.decrypt_sectors(&mut buf, 512, 0xff);
        let plain: Vec<u8> = (0..512).map(|i| i as u8).collect();
        assert_eq!(buf, plain);
    }

    /// Pseudo-random bytes (xorshift64), the same for the same seed.
    fn noise(mut seed: u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect()
    }

    /// Decrypt one block with `key`.
    fn decrypt_block(key: &Aes, b: &mut [u8]) {
        let b: &mut Block = b.try_into().unwrap();
        match key {
            Aes::A128(c) => c.decrypt_block(b),
            Aes::A192(c) => c.decrypt_block(b),
            Aes::A256(c) => c.decrypt_block(b),
        }
    }

    /// XTS-plain64 decryption the plain way: block by block, the tweak
    /// multiplied by x one byte at a time after each block.
    fn xts_reference(key: &[u8], buf: &mut [u8], sector: usize, first: u64) {
        let (k1, k2) = key.split_at(key.len() / 2);
        let (data, tweak) = (Aes::new(k1).unwrap(), Aes::new(k2).unwrap());
        for (i, s) in buf.chunks_exact_mut(sector).enumerate() {
            let mut t = [0u8; 16];
            t[..8].copy_from_slice(&(first + i as u64).to_le_bytes());
            tweak.encrypt(&mut t);
            for b in s.chunks_exact_mut(16) {
                xor(b, &t);
                decrypt_block(&data, b);
                xor(b, &t);
                let carry = t[15] >> 7;
                for j in (1..16).rev() {
                    t[j] = (t[j] << 1) | (t[j - 1] >> 7);
                }
                t[0] = (t[0] << 1) ^ (carry * 0x87);
            }
        }
    }

    /// The one-pass XTS decryption gives what the plain block-by-block
    /// one gives, on random data and keys (AES-128 and AES-256), 512- and
    /// 4096-byte sectors numbered from far above 0, calls of 1, 3 and
    /// `GROUP + 5` sectors (a last group shorter than the others) with a
    /// tail shorter than a sector, which is left as it is.
    #[test]
    fn xts_one_pass_matches_reference() {
        for (seed, key_len) in [(1u64, 32usize), (2, 64)] {
            let key = noise(seed, key_len);
            let c = SectorCipher::new("aes-xts-plain64", &key).unwrap();
            for sector in [512usize, 4096] {
                for count in [1usize, 3, GROUP + 5] {
                    let first = 0x0123_4567_89ab + seed * 1000 + count as u64;
                    let data = noise(seed * 7 + count as u64, count * sector + 100);
                    let mut want = data.clone();
                    xts_reference(&key, &mut want, sector, first);
                    let mut got = data.clone();
                    c.decrypt_sectors(&mut got, sector, first);
                    let at = format!("{key_len}-byte key, {sector}-byte sectors, {count}");
                    assert!(got == want, "{at}");
                    assert_eq!(got[count * sector..], data[count * sector..], "{at}");
                }
            }
        }
    }

    /// CBC decryption in one pass (plain64 and ESSIV IVs) gives what the
    /// plain block-by-block one gives, across group and batch boundaries.
    #[test]
    fn cbc_one_pass_matches_reference() {
        for spec in ["aes-cbc-plain64", "aes-cbc-essiv:sha256"] {
            let key = noise(3, 32);
            let c = SectorCipher::new(spec, &key).unwrap();
            let aes = Aes::new(&key).unwrap();
            for sector in [512usize, 4096] {
                let count = GROUP + 3;
                let first = 77_000;
                let data = noise(sector as u64, count * sector);
                let mut want = data.clone();
                for (i, s) in want.chunks_exact_mut(sector).enumerate() {
                    let mut prev = c.iv(first + i as u64);
                    for b in s.chunks_exact_mut(16) {
                        let kept: [u8; 16] = (*b).try_into().unwrap();
                        decrypt_block(&aes, b);
                        xor(b, &prev);
                        prev = kept;
                    }
                }
                let mut got = data;
                c.decrypt_sectors(&mut got, sector, first);
                assert!(got == want, "{spec}, {sector}-byte sectors");
            }
        }
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

    /// Decrypting many sectors in one call (in groups of 64 sectors, in
    /// batches of the AES backend's width) gives what each sector encrypted
    /// alone gives back; a tail shorter than a sector is left as it is.
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
