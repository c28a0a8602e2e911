//! Reading a virtual disk made from fuzz input: shared by the container
//! fuzz targets (VMDK; VHD, VHDX and VDI).

use vmrescue::io::ReadAt;

/// Read at most this much of the virtual disk per input (sizes may be huge).
pub const READ_LIMIT: u64 = 4 << 20;

/// Read `v` from the start in 64 KiB pieces (up to [`READ_LIMIT`], asking
/// `each` about every piece read), then three pieces near its middle and
/// end, stopping at the first error of the sequential pass.
pub fn exercise(v: &dyn ReadAt, each: &mut dyn FnMut(u64, u64)) {
    let size = v.size();
    let mut buf = vec![0u8; 65536];
    let mut pos = 0;
    while pos < size.min(READ_LIMIT) {
        let n = (size - pos).min(buf.len() as u64) as usize;
        if v.read_exact_at(pos, &mut buf[..n]).is_err() {
            break;
        }
        each(pos, n as u64);
        pos += n as u64;
    }
    // Reads larger than a grain or block: the parallel inflate and the
    // merged reads of neighbouring blocks.
    let mut big = vec![0u8; (1 << 20).min(size) as usize];
    let _ = v.read_exact_at(0, &mut big);
    for off in [size / 2, size.saturating_sub(4097), size.saturating_sub(1)] {
        let n = (size - off).min(4097) as usize;
        let _ = v.read_exact_at(off, &mut buf[..n]);
    }
}
