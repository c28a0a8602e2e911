//! Arrays laid out in the tests from MD's placement rules (written out
//! here chunk by chunk, as `raid5_compute_sector` does), parity and Q
//! computed with a bitwise GF(2⁸) multiply, then read back whole and with
//! legs taken away.

use super::*;
use crate::io::{Area, DiskId, MappedView, Segment, Target};

const CS: u64 = 1024;

fn slow_mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let hi = a & 0x80;
        a <<= 1;
        if hi != 0 {
            a ^= 0x1d;
        }
        b >>= 1;
    }
    p
}

fn slow_pow2(i: usize) -> u8 {
    (0..i).fold(1u8, |x, _| slow_mul(x, 2))
}

/// MD's placement of chunk `chunk`: (stripe, data leg, P leg, Q leg, ddf).
fn md_place(
    level: u32,
    algo: u32,
    n: usize,
    chunk: u64,
) -> (u64, usize, usize, Option<usize>, bool) {
    let maxdeg = if level == 6 { 2 } else { 1 };
    let data_disks = (n - maxdeg) as u64;
    let stripe = chunk / data_disks;
    let mut dd = (chunk % data_disks) as i64;
    let n_ = n as i64;
    let s = stripe as i64;
    let dd_ = data_disks as i64;
    let (pd, mut qd, mut ddf): (i64, i64, bool);
    qd = -1;
    ddf = false;
    match (level, algo) {
        (4, _) => pd = dd_,
        (5, 0) => {
            pd = dd_ - s % n_;
            if dd >= pd {
                dd += 1
            }
        }
        (5, 1) => {
            pd = s % n_;
            if dd >= pd {
                dd += 1
            }
        }
        (5, 2) => {
            pd = dd_ - s % n_;
            dd = (pd + 1 + dd) % n_
        }
        (5, 3) => {
            pd = s % n_;
            dd = (pd + 1 + dd) % n_
        }
        (5, 4) => {
            pd = 0;
            dd += 1
        }
        (5, 5) => pd = dd_,
        (6, 0 | 1 | 8 | 9) => {
            pd = match algo {
                0 => n_ - 1 - s % n_,
                9 => n_ - 1 - (s + 1) % n_,
                _ => s % n_,
            };
            qd = pd + 1;
            if pd == n_ - 1 {
                dd += 1;
                qd = 0;
            } else if dd >= pd {
                dd += 2
            }
            ddf = algo >= 8;
        }
        (6, 2 | 3) => {
            pd = if algo == 2 { n_ - 1 - s % n_ } else { s % n_ };
            qd = (pd + 1) % n_;
            dd = (pd + 2 + dd) % n_;
        }
        (6, 4) => {
            pd = 0;
            qd = 1;
            dd += 2
        }
        (6, 5) => {
            pd = dd_;
            qd = dd_ + 1
        }
        (6, 10) => {
            pd = n_ - 1 - s % n_;
            qd = (pd + n_ - 1) % n_;
            dd = (pd + 1 + dd) % n_;
            ddf = true;
        }
        (6, 16 | 17) => {
            pd = if algo == 16 {
                dd_ - s % (n_ - 1)
            } else {
                s % (n_ - 1)
            };
            if dd >= pd {
                dd += 1
            }
            qd = n_ - 1;
        }
        (6, 18 | 19) => {
            pd = if algo == 18 {
                dd_ - s % (n_ - 1)
            } else {
                s % (n_ - 1)
            };
            dd = (pd + 1 + dd) % (n_ - 1);
            qd = n_ - 1;
        }
        (6, 20) => {
            pd = 0;
            dd += 1;
            qd = n_ - 1
        }
        _ => panic!("{level} {algo}"),
    }
    (
        stripe,
        dd as usize,
        pd as usize,
        (qd >= 0).then_some(qd as usize),
        ddf,
    )
}

/// Legs of an array of `rows` stripes holding `data`, laid out by MD's rules.
fn lay_out(level: u32, algo: u32, n: usize, data: &[u8]) -> Vec<Vec<u8>> {
    let maxdeg = if level == 6 { 2 } else { 1 };
    let dd_n = n - maxdeg;
    let chunks = data.len() as u64 / CS;
    let rows = chunks / dd_n as u64;
    let mut legs = vec![vec![0u8; (rows * CS) as usize]; n];
    for c in 0..chunks {
        let (stripe, d, _, _, _) = md_place(level, algo, n, c);
        let src = &data[(c * CS) as usize..((c + 1) * CS) as usize];
        legs[d][(stripe * CS) as usize..((stripe + 1) * CS) as usize].copy_from_slice(src);
    }
    for row in 0..rows {
        let (_, _, pd, qd, ddf) = md_place(level, algo, n, row * dd_n as u64);
        let r = (row * CS) as usize..((row + 1) * CS) as usize;
        let mut p = vec![0u8; CS as usize];
        let mut q = vec![0u8; CS as usize];
        // raid6_idx_to_slot: DDF counts every leg from leg 0; MD counts data legs after Q.
        let start = if ddf {
            0
        } else {
            qd.map_or(0, |q| (q + 1) % n)
        };
        let mut count = 0;
        for k in 0..n {
            let i = (start + k) % n;
            let slot = count;
            if ddf {
                count += 1;
            }
            if i == pd || Some(i) == qd {
                continue;
            }
            if !ddf {
                count += 1;
            }
            let g = slow_pow2(slot);
            for (j, b) in legs[i][r.clone()].iter().enumerate() {
                p[j] ^= b;
                q[j] ^= slow_mul(*b, g);
            }
        }
        legs[pd][r.clone()].copy_from_slice(&p);
        if let Some(qd) = qd {
            legs[qd][r].copy_from_slice(&q);
        }
    }
    legs
}

fn sample(len: usize) -> Vec<u8> {
    let mut x = 0x1234_5678u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}

/// One disk per leg; legs listed in `gone` are missing.
fn array(level: RaidLevel, legs: &[Vec<u8>], gone: &[usize]) -> (Raid, Vec<Arc<dyn ReadAt>>) {
    let disks: Vec<Arc<dyn ReadAt>> = legs
        .iter()
        .map(|l| Arc::new(l.clone()) as Arc<dyn ReadAt>)
        .collect();
    let leg_len = legs[0].len() as u64;
    let legs = (0..legs.len())
        .map(|i| {
            if gone.contains(&i) {
                Leg::missing(format!("leg{i}"), "its PV is missing")
            } else {
                Leg::new(
                    format!("leg{i}"),
                    Mapping::linear(
                        Area {
                            disk: DiskId(i),
                            offset: 0,
                        },
                        leg_len,
                    ),
                    0,
                )
            }
        })
        .collect();
    (Raid::new(level, CS, legs, leg_len).unwrap(), disks)
}

fn read_all(r: &Raid, disks: &[Arc<dyn ReadAt>]) -> Vec<u8> {
    let mut out = vec![0u8; r.size() as usize];
    // Odd-sized reads crossing chunks and stripes.
    let mut at = 0;
    for step in [1usize, 700, 3000, 5] {
        let n = step.min(out.len() - at);
        r.read(disks, at as u64, &mut out[at..at + n]).unwrap();
        at += n;
    }
    r.read(disks, at as u64, &mut out[at..]).unwrap();
    out
}

#[test]
fn gf_tables_match_bitwise_multiply() {
    for a in 0..=255u8 {
        for b in [0u8, 1, 2, 3, 0x1d, 0x80, 0xff, a] {
            assert_eq!(gf_mul(a, b), slow_mul(a, b), "{a} * {b}");
        }
        if a != 0 {
            assert_eq!(gf_mul(a, gf_inv(a)), 1);
        }
    }
    assert_eq!(gf_exp(8), 0x1d);
}

#[test]
fn raid5_left_symmetric_is_mds_default_picture() {
    // mdadm's left-symmetric over 4 disks: D0 D1 D2 P / D4 D5 P D3 / D8 P D6 D7 / P D9 D10 D11.
    let picture = [
        [Some(0), Some(1), Some(2), None],
        [Some(4), Some(5), None, Some(3)],
        [Some(8), None, Some(6), Some(7)],
        [None, Some(9), Some(10), Some(11)],
    ];
    let data: Vec<u8> = (0..12u8).flat_map(|c| vec![c + 1; CS as usize]).collect();
    let legs = lay_out(5, 2, 4, &data);
    for (row, cells) in picture.iter().enumerate() {
        for (leg, cell) in cells.iter().enumerate() {
            let b = legs[leg][row * CS as usize];
            if let Some(c) = cell {
                assert_eq!(b, c + 1, "row {row} leg {leg}");
            }
        }
    }
    let (r, disks) = array(RaidLevel::Raid5(ParityLayout::LeftSymmetric), &legs, &[]);
    assert_eq!(read_all(&r, &disks), data);
}

#[test]
fn raid4_and_raid5_layouts_read_and_rebuild_one_leg() {
    for (level, algo) in [(4, 0), (5, 0), (5, 1), (5, 2), (5, 3), (5, 4), (5, 5)] {
        for n in [2usize, 3, 4, 5] {
            let data = sample((n - 1) * 5 * CS as usize);
            let legs = lay_out(level, algo, n, &data);
            let lvl = if level == 4 {
                RaidLevel::Raid4
            } else {
                RaidLevel::Raid5(ParityLayout::from_md(algo).unwrap())
            };
            let (r, disks) = array(lvl, &legs, &[]);
            assert_eq!(r.size(), data.len() as u64);
            assert_eq!(read_all(&r, &disks), data, "{level}/{algo} n={n}");
            for gone in 0..n {
                let (r, disks) = array(lvl, &legs, &[gone]);
                assert!(r.readable().is_ok());
                assert_eq!(
                    read_all(&r, &disks),
                    data,
                    "{level}/{algo} n={n} without leg {gone}"
                );
            }
            if n > 2 {
                let (r, disks) = array(lvl, &legs, &[0, 1]);
                assert!(r.readable().is_err());
                let mut buf = vec![0u8; data.len()];
                let e = r.read(&disks, 0, &mut buf).unwrap_err().to_string();
                assert!(e.contains("cannot be rebuilt"), "{e}");
            }
        }
    }
}

#[test]
fn raid6_layouts_read_and_rebuild_two_legs() {
    for algo in [0u32, 1, 2, 3, 4, 5, 8, 9, 10, 16, 17, 18, 19, 20] {
        for n in [4usize, 5, 6] {
            let data = sample((n - 2) * 7 * CS as usize);
            let legs = lay_out(6, algo, n, &data);
            let lvl = RaidLevel::Raid6(ParityLayout::from_md(algo).unwrap());
            let (r, disks) = array(lvl, &legs, &[]);
            assert_eq!(read_all(&r, &disks), data, "6/{algo} n={n}");
            for a in 0..n {
                for b in a..n {
                    let (r, disks) = array(lvl, &legs, &[a, b]);
                    assert_eq!(
                        read_all(&r, &disks),
                        data,
                        "6/{algo} n={n} without legs {a} and {b}"
                    );
                }
            }
            let (r, disks) = array(lvl, &legs, &[0, 1, 2]);
            assert!(r.readable().is_err());
            let mut buf = vec![0u8; data.len()];
            assert!(r.read(&disks, 0, &mut buf).is_err());
        }
    }
}

/// Legs from a picture: `cells[row][leg]` is the chunk stored there.
fn from_picture(cells: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let n = cells[0].len();
    let mut legs = vec![Vec::new(); n];
    let mut max = 0;
    for row in cells {
        for (leg, &c) in row.iter().enumerate() {
            legs[leg].extend(std::iter::repeat_n(c, CS as usize));
            max = max.max(c);
        }
    }
    let data = (1..=max).flat_map(|c| vec![c; CS as usize]).collect();
    (legs, data)
}

#[test]
fn raid10_near_far_and_offset_follow_mds_pictures() {
    // md(4): near 2 over 3 legs.
    let (legs, data) = from_picture(&[&[1, 1, 2], &[2, 3, 3], &[4, 4, 5], &[5, 6, 6]]);
    let near = RaidLevel::Raid10 {
        near: 2,
        far: 1,
        offset: false,
    };
    let (r, disks) = array(near, &legs, &[]);
    assert_eq!(read_all(&r, &disks), data);
    for gone in 0..3 {
        let (r, disks) = array(near, &legs, &[gone]);
        assert_eq!(read_all(&r, &disks), data, "without leg {gone}");
    }
    let (r, _) = array(near, &legs, &[0, 1]);
    assert!(r.readable().is_err());

    // far 2 over 2 legs: the second copies in the second half, shifted by one leg.
    let (legs, data) = from_picture(&[&[1, 2], &[3, 4], &[2, 1], &[4, 3]]);
    let far = RaidLevel::Raid10 {
        near: 1,
        far: 2,
        offset: false,
    };
    for gone in [vec![], vec![0], vec![1]] {
        let (r, disks) = array(far, &legs, &gone);
        assert_eq!(r.size(), data.len() as u64);
        assert_eq!(read_all(&r, &disks), data, "far without {gone:?}");
    }

    // offset 2 over 2 legs: each row repeated, shifted, in the next row.
    let (legs, data) = from_picture(&[&[1, 2], &[2, 1], &[3, 4], &[4, 3]]);
    let offset = RaidLevel::Raid10 {
        near: 1,
        far: 2,
        offset: true,
    };
    for gone in [vec![], vec![0], vec![1]] {
        let (r, disks) = array(offset, &legs, &gone);
        assert_eq!(read_all(&r, &disks), data, "offset without {gone:?}");
    }
}

#[test]
fn raid0_and_raid1() {
    let (legs, data) = from_picture(&[&[1, 2, 3], &[4, 5, 6]]);
    let (r, disks) = array(RaidLevel::Raid0, &legs, &[]);
    assert_eq!(read_all(&r, &disks), data);
    let (r, disks) = array(RaidLevel::Raid0, &legs, &[1]);
    let mut buf = vec![0u8; 10];
    r.read(&disks, 5, &mut buf).unwrap();
    let e = r.read(&disks, CS, &mut buf).unwrap_err().to_string();
    assert!(e.contains("leg1") && e.contains("PV is missing"), "{e}");

    let data = sample(3 * CS as usize);
    let legs = vec![data.clone(), vec![0xee; data.len()]];
    // The second copy is stale: never read.
    let (r, disks) = array(RaidLevel::Raid1, &legs, &[]);
    let r = Raid::new(
        RaidLevel::Raid1,
        0,
        vec![
            r.legs()[0].clone(),
            r.legs()[1].clone().unusable("stale: events 7 < 9"),
        ],
        data.len() as u64,
    )
    .unwrap();
    assert_eq!(read_all(&r, &disks), data);
    let notes = r.which_legs_used().join("\n");
    assert!(notes.contains("reads leg leg0"), "{notes}");
    assert!(notes.contains("leg leg1 is not used: stale"), "{notes}");
    // The first leg missing: the second one is read.
    let legs = vec![vec![0xee; data.len()], data.clone()];
    let (r, disks) = array(RaidLevel::Raid1, &legs, &[0]);
    assert_eq!(read_all(&r, &disks), data);
}

#[test]
fn a_failing_read_falls_back_to_another_copy_or_parity() {
    let data = sample(3 * 4 * CS as usize);
    let mut legs = lay_out(5, 2, 4, &data);
    let (r, mut disks) = array(RaidLevel::Raid5(ParityLayout::LeftSymmetric), &legs, &[]);
    // Leg 2's disk is shorter than its mapping says: its reads fail.
    legs[2].truncate(10);
    disks[2] = Arc::new(legs[2].clone());
    assert_eq!(read_all(&r, &disks), data);
}

#[test]
fn segments_read_through_the_array_and_have_no_single_place() {
    let data = sample(2 * 3 * CS as usize);
    let legs = lay_out(5, 2, 3, &data);
    let (r, disks) = array(RaidLevel::Raid5(ParityLayout::LeftSymmetric), &legs, &[1]);
    let r = Arc::new(r.with_size(5 * CS).unwrap());
    let m = Mapping::new(vec![
        Segment {
            start: 0,
            len: 100,
            target: Target::Zero,
        },
        Segment {
            start: 100,
            len: 5 * CS,
            target: Target::Raid(r.clone()),
        },
    ])
    .unwrap();
    assert!(m.unreadable().is_empty());
    assert_eq!(m.disks(), vec![DiskId(0), DiskId(2)]);
    assert!(m.locate(150).is_err());
    assert!(m.ranges(150, 10).is_err());
    let v = MappedView::new(m, disks);
    let mut buf = vec![0u8; 5 * CS as usize];
    v.read_exact_at(100, &mut buf).unwrap();
    assert_eq!(buf, data[..5 * CS as usize]);
    // Longer than the array: refused.
    assert!(
        Mapping::new(vec![Segment {
            start: 0,
            len: 6 * CS,
            target: Target::Raid(r),
        }])
        .is_err()
    );
}

#[test]
fn hostile_geometry_is_refused_not_panicking() {
    let m = || Leg::missing("x", "gone");
    assert!(Raid::new(RaidLevel::Raid0, CS, vec![], 10).is_err());
    assert!(
        Raid::new(
            RaidLevel::Raid5(ParityLayout::LeftSymmetric),
            0,
            vec![m(), m()],
            CS
        )
        .is_err()
    );
    assert!(
        Raid::new(
            RaidLevel::Raid5(ParityLayout::LeftSymmetric),
            100,
            vec![m(), m()],
            CS
        )
        .is_err()
    );
    assert!(
        Raid::new(
            RaidLevel::Raid5(ParityLayout::RotatingNRestart),
            CS,
            vec![m(), m()],
            CS
        )
        .is_err()
    );
    assert!(
        Raid::new(
            RaidLevel::Raid6(ParityLayout::LeftSymmetric),
            CS,
            vec![m(), m()],
            CS
        )
        .is_err()
    );
    assert!(
        Raid::new(
            RaidLevel::Raid10 {
                near: 0,
                far: 1,
                offset: false
            },
            CS,
            vec![m(), m()],
            CS
        )
        .is_err()
    );
    assert!(Raid::new(RaidLevel::Raid0, 1 << 40, vec![m(); 300], u64::MAX).is_err());
    let r = Raid::new(RaidLevel::Raid0, 1 << 9, vec![m(); 200], u64::MAX / 4).unwrap_err();
    assert!(r.contains("64 bits"), "{r}");
    // A leg too short for its data is not read.
    let short = Leg::new(
        "s",
        Mapping::linear(
            Area {
                disk: DiskId(0),
                offset: 0,
            },
            10,
        ),
        0,
    );
    let r = Raid::new(RaidLevel::Raid1, 0, vec![short], 4096).unwrap();
    assert!(!r.legs()[0].usable());
    let mut buf = [0u8; 4];
    assert!(r.read(&[], u64::MAX - 1, &mut buf).is_err());
    assert!(r.read(&[], 0, &mut buf).is_err());
}

#[test]
fn a_raid_segment_serializes() {
    let data = sample(2 * 3 * CS as usize);
    let legs = lay_out(5, 2, 3, &data);
    let (r, _) = array(RaidLevel::Raid5(ParityLayout::LeftSymmetric), &legs, &[1]);
    let m = Mapping::new(vec![Segment {
        start: 0,
        len: r.size(),
        target: Target::Raid(Arc::new(r)),
    }])
    .unwrap();
    let j = serde_json::to_value(&m).unwrap();
    let t = &j["segments"][0]["target"];
    assert_eq!(t["type"], "raid");
    assert_eq!(t["level"]["level"], "raid5");
    assert_eq!(t["level"]["geometry"], "left_symmetric");
    assert_eq!(t["legs"][1]["unusable"], "its PV is missing");
    let ten = RaidLevel::Raid10 {
        near: 2,
        far: 1,
        offset: false,
    };
    assert_eq!(serde_json::to_value(ten).unwrap()["geometry"]["near"], 2);
}
