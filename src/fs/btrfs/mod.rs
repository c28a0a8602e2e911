//! btrfs: checksums ([`csum`]) and extent decompression ([`compress`]).
pub mod compress;
pub mod csum;
