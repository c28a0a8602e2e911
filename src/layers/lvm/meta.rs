//! The VG metadata text decoded into typed values, under lvm2's own field
//! names (`extent_size`, `pe_start`, `stripe_count`...). Sizes stay in the
//! units the text uses (512-byte sectors, extents); assembly converts them.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

use super::text::{Section, Value};
use crate::text::escape_str;

/// Longest VG or LV name lvm2 accepts (`NAME_LEN` less the NUL).
const NAME_MAX: usize = 127;

/// A volume group as its metadata text describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgMeta {
    /// The VG's name (the top-level section's name).
    pub name: String,
    /// `id`.
    pub id: String,
    /// `seqno`.
    pub seqno: u64,
    /// `status`.
    pub status: Vec<String>,
    /// `extent_size`, in 512-byte sectors.
    pub extent_size: u64,
    /// `physical_volumes`, in order.
    pub pvs: Vec<PvMeta>,
    /// `logical_volumes`, in order.
    pub lvs: Vec<LvMeta>,
    /// The file-level `creation_host` (who wrote this copy).
    pub creation_host: Option<String>,
    /// The file-level `creation_time`.
    pub creation_time: Option<i64>,
}

/// One entry of `physical_volumes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvMeta {
    /// Its key (`pv0`).
    pub key: String,
    /// `id`.
    pub id: String,
    /// `device` (a hint only).
    pub device: Option<String>,
    /// `status`.
    pub status: Vec<String>,
    /// `flags` (`MISSING` when lvm2 already knows the PV is gone).
    pub flags: Vec<String>,
    /// `dev_size`, in sectors.
    pub dev_size: Option<u64>,
    /// `pe_start`, in sectors.
    pub pe_start: u64,
    /// `pe_count`.
    pub pe_count: u64,
}

/// One entry of `logical_volumes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LvMeta {
    /// Its name (the section's name).
    pub name: String,
    /// `id`.
    pub id: String,
    /// `status`.
    pub status: Vec<String>,
    /// `flags`.
    pub flags: Vec<String>,
    /// `creation_time`.
    pub creation_time: Option<i64>,
    /// `creation_host`.
    pub creation_host: Option<String>,
    /// `segment_count`, as written.
    pub segment_count: Option<u64>,
    /// The segment subsections, in the order written.
    pub segments: Vec<SegMeta>,
}

/// What an area of a segment names: a PV key or an LV name, and an extent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaRef {
    /// `pv0` or an LV name.
    pub name: String,
    /// First extent in it.
    pub start: u64,
}

/// One `segmentN` subsection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegMeta {
    /// Its key (`segment1`).
    pub key: String,
    /// `start_extent`.
    pub start_extent: u64,
    /// `extent_count`.
    pub extent_count: u64,
    /// `type`.
    pub segtype: String,
    /// `stripe_count` (striped segments).
    pub stripe_count: Option<u64>,
    /// `stripe_size`, in sectors (striped segments).
    pub stripe_size: Option<u64>,
    /// `device_id` (thin segments: the thin device in the pool's metadata).
    pub device_id: Option<u64>,
    /// `chunk_size`, in sectors (thin-pool and cache-pool segments).
    pub chunk_size: Option<u64>,
    /// The data areas, as `lvs -o devices` lists them: `stripes`, `mirrors`,
    /// the images of `raids`, the data LV of pools, the origin of caches.
    pub areas: Vec<AreaRef>,
    /// Every other LV this segment refers to (pool metadata, raid metadata
    /// images, snapshot origin and store, logs...): `(field, LV name)`.
    pub refs: Vec<(String, String)>,
    /// Raid segments: the metadata sub-LV (`lv_rmeta_N`) paired with each
    /// image in `areas`, in the same order (`None` where there is none).
    pub raid_meta: Vec<Option<String>>,
    /// Raid and mirror segments' other numbers, as written: `device_count`,
    /// `data_copies`, `data_offset` (sectors), `region_size` (sectors),
    /// `mirror_count`...
    pub raid: RaidFields,
    /// `cache_mode` (cache and cache-pool segments).
    pub cache_mode: Option<String>,
}

/// The numbers of a raid or mirror segment, as lvm2 writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaidFields {
    /// `device_count` (raid1/4/5/6/10).
    pub device_count: Option<u64>,
    /// `data_copies` (raid10; lvm2 omits it for the default 2).
    pub data_copies: Option<u64>,
    /// `data_offset`, in sectors: where data starts in each image (reshape space).
    pub data_offset: Option<u64>,
    /// `region_size`, in sectors.
    pub region_size: Option<u64>,
    /// `mirror_count` (mirror).
    pub mirror_count: Option<u64>,
}

/// Fields of a segment that name another LV of the VG.
const LV_REF_FIELDS: &[&str] = &[
    "metadata",
    "pool",
    "thin_pool",
    "origin",
    "external_origin",
    "cow_store",
    "merging_store",
    "cache_pool",
    "data",
    "mirror_log",
    "writecache",
    "integrity_meta_dev",
    "meta_dev",
    "vdo_pool",
];

/// Whether `name` is a VG or LV name lvm2 accepts.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX
        && !name.starts_with('-')
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
}

fn uint(s: &Section, key: &str, what: &str) -> Result<u64, String> {
    match s.value(key) {
        None => Err(format!("{what}: no {key}")),
        Some(Value::Int(i)) => {
            u64::try_from(*i).map_err(|_| format!("{what}: {key} = {i} is out of range"))
        }
        Some(v) => Err(format!(
            "{what}: {key} is {} (expected an integer)",
            v.kind()
        )),
    }
}

fn opt_uint(s: &Section, key: &str, what: &str) -> Result<Option<u64>, String> {
    if s.value(key).is_none() {
        return Ok(None);
    }
    uint(s, key, what).map(Some)
}

fn string(s: &Section, key: &str, what: &str) -> Result<String, String> {
    match s.value(key) {
        None => Err(format!("{what}: no {key}")),
        Some(Value::Str(v)) => Ok(v.clone()),
        Some(v) => Err(format!("{what}: {key} is {} (expected a string)", v.kind())),
    }
}

fn strings(s: &Section, key: &str, what: &str) -> Result<Vec<String>, String> {
    match s.value(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{what}: {key} holds {} (expected strings)", v.kind()))
            })
            .collect(),
        Some(v) => Err(format!("{what}: {key} is {} (expected an array)", v.kind())),
    }
}

fn time(s: &Section, key: &str) -> Option<i64> {
    s.int(key).and_then(|i| i64::try_from(i).ok())
}

/// Decode the top level of a metadata text into its VG.
pub fn decode(root: &Section) -> Result<VgMeta, String> {
    // lvm2 keeps one VG per text: the only top-level section.
    let mut sections = root.sections();
    let (name, vg) = sections
        .next()
        .ok_or_else(|| "no volume group section".to_string())?;
    if let Some((other, _)) = sections.next() {
        return Err(format!(
            "more than one top-level section ({} and {})",
            escape_str(name),
            escape_str(other)
        ));
    }
    if !valid_name(name) {
        return Err(format!("'{}' is not a valid VG name", escape_str(name)));
    }
    let what = format!("VG {name}");
    let id = string(vg, "id", &what)?;
    let seqno = uint(vg, "seqno", &what)?;
    let extent_size = uint(vg, "extent_size", &what)?;
    if extent_size == 0 {
        return Err(format!("{what}: extent_size is 0"));
    }
    let status = strings(vg, "status", &what)?;
    let mut pvs = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    if let Some(list) = vg.section("physical_volumes") {
        for (key, pv) in list.sections() {
            let what = format!("{what}: PV {}", escape_str(key));
            if !seen.insert(key) {
                return Err(format!("{what} is listed twice"));
            }
            pvs.push(PvMeta {
                key: key.to_string(),
                id: string(pv, "id", &what)?,
                device: pv.str("device").map(str::to_string),
                status: strings(pv, "status", &what)?,
                flags: strings(pv, "flags", &what)?,
                dev_size: opt_uint(pv, "dev_size", &what)?,
                pe_start: uint(pv, "pe_start", &what)?,
                pe_count: uint(pv, "pe_count", &what)?,
            });
        }
    }
    let mut lvs = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    if let Some(list) = vg.section("logical_volumes") {
        for (lv_name, lv) in list.sections() {
            if !valid_name(lv_name) {
                return Err(format!(
                    "{what}: '{}' is not a valid LV name",
                    escape_str(lv_name)
                ));
            }
            if !seen.insert(lv_name) {
                return Err(format!("{what}: LV {lv_name} is listed twice"));
            }
            let what = format!("{what}: LV {lv_name}");
            let mut segments = Vec::new();
            for (key, seg) in lv.sections() {
                segments.push(decode_segment(
                    key,
                    seg,
                    &format!("{what} {}", escape_str(key)),
                )?);
            }
            lvs.push(LvMeta {
                name: lv_name.to_string(),
                id: string(lv, "id", &what)?,
                status: strings(lv, "status", &what)?,
                flags: strings(lv, "flags", &what)?,
                creation_time: time(lv, "creation_time"),
                creation_host: lv.str("creation_host").map(str::to_string),
                segment_count: opt_uint(lv, "segment_count", &what)?,
                segments,
            });
        }
    }
    Ok(VgMeta {
        name: name.to_string(),
        id,
        seqno,
        status,
        extent_size,
        pvs,
        lvs,
        creation_host: root.str("creation_host").map(str::to_string),
        creation_time: time(root, "creation_time"),
    })
}

/// `[name, extent, name, extent...]`.
fn pairs(seg: &Section, key: &str, what: &str) -> Result<Vec<AreaRef>, String> {
    let Some(v) = seg.value(key) else {
        return Ok(Vec::new());
    };
    let a = v
        .as_array()
        .ok_or_else(|| format!("{what}: {key} is {} (expected an array)", v.kind()))?;
    if a.len() % 2 != 0 {
        return Err(format!("{what}: {key} has an odd number of elements"));
    }
    a.chunks_exact(2)
        .map(|p| match p {
            [Value::Str(name), Value::Int(start)] => Ok(AreaRef {
                name: name.clone(),
                start: u64::try_from(*start)
                    .map_err(|_| format!("{what}: {key} has extent {start}"))?,
            }),
            _ => Err(format!(
                "{what}: {key} is not a list of (name, extent) pairs"
            )),
        })
        .collect()
}

fn decode_segment(key: &str, seg: &Section, what: &str) -> Result<SegMeta, String> {
    let segtype = string(seg, "type", what)?;
    let mut areas = Vec::new();
    let mut refs = Vec::new();
    let mut raid_meta = Vec::new();
    match segtype.as_str() {
        "striped" | "linear" => areas = pairs(seg, "stripes", what)?,
        "mirror" => areas = pairs(seg, "mirrors", what)?,
        t if t.starts_with("raid") => {
            // lvm2 writes plain raid0's images as `raid0_lvs`; the others
            // as `raids`, each image after its metadata LV when it has one
            // (a name with `_rmeta_`, as lvm2's import tells them apart;
            // "-" where an image has none).
            let names = match seg.value("raid0_lvs") {
                Some(_) if t == "raid0" => strings(seg, "raid0_lvs", what)?,
                _ => strings(seg, "raids", what)?,
            };
            let mut meta: Option<String> = None;
            for n in names {
                if n == "-" {
                    meta = None;
                } else if n.contains("_rmeta_") {
                    refs.push(("raids".to_string(), n.clone()));
                    meta = Some(n);
                } else {
                    areas.push(AreaRef { name: n, start: 0 });
                    raid_meta.push(meta.take());
                }
            }
        }
        _ => {}
    }
    // The LV that lvs reports as the data area of pools and caches.
    let data_field = match segtype.as_str() {
        "thin-pool" => Some("pool"),
        "cache-pool" | "vdo-pool" => Some("data"),
        "cache" | "writecache" | "integrity" => Some("origin"),
        "vdo" => Some("vdo_pool"),
        _ => None,
    };
    for field in LV_REF_FIELDS {
        if let Some(name) = seg.str(field) {
            if Some(*field) == data_field {
                areas.push(AreaRef {
                    name: name.to_string(),
                    start: 0,
                });
            } else {
                refs.push((field.to_string(), name.to_string()));
            }
        }
    }
    Ok(SegMeta {
        key: key.to_string(),
        start_extent: uint(seg, "start_extent", what)?,
        extent_count: uint(seg, "extent_count", what)?,
        segtype,
        stripe_count: opt_uint(seg, "stripe_count", what)?,
        stripe_size: opt_uint(seg, "stripe_size", what)?,
        device_id: opt_uint(seg, "device_id", what).ok().flatten(),
        chunk_size: opt_uint(seg, "chunk_size", what).ok().flatten(),
        areas,
        refs,
        raid_meta,
        raid: RaidFields {
            device_count: opt_uint(seg, "device_count", what).ok().flatten(),
            data_copies: opt_uint(seg, "data_copies", what).ok().flatten(),
            data_offset: opt_uint(seg, "data_offset", what).ok().flatten(),
            region_size: opt_uint(seg, "region_size", what).ok().flatten(),
            mirror_count: opt_uint(seg, "mirror_count", what).ok().flatten(),
        },
        cache_mode: seg.str("cache_mode").map(str::to_string),
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::super::text::parse;
    use super::*;

    #[test]
    fn names() {
        for ok in ["vg_ta", "lv-root", "a.b+c", "0"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-x", ".", "..", "a/b", "a b", "ä", &"x".repeat(128)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn decodes_segments() {
        let root = parse(
            br#"vg { id = "x" seqno = 3 extent_size = 8192
            physical_volumes { pv0 { id = "p" pe_start = 2048 pe_count = 10 } }
            logical_volumes {
              r { id = "r" status = ["READ", "VISIBLE"] segment1 { start_extent = 0 extent_count = 2 type = "raid1"
                  raids = ["r_rmeta_0", "r_rimage_0", "r_rmeta_1", "r_rimage_1"] } }
              t { id = "t" segment1 { start_extent = 0 extent_count = 2 type = "thin-pool"
                  metadata = "t_tmeta" pool = "t_tdata" } }
              s { id = "s" segment1 { start_extent = 0 extent_count = 4 type = "striped"
                  stripe_count = 2 stripe_size = 128 stripes = ["pv0", 0, "pv0", 6] } }
            } }"#,
        )
        .unwrap();
        let vg = decode(&root).unwrap();
        assert_eq!(vg.seqno, 3);
        let r = &vg.lvs[0].segments[0];
        assert_eq!(
            r.areas.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            ["r_rimage_0", "r_rimage_1"]
        );
        assert_eq!(r.refs.len(), 2);
        let t = &vg.lvs[1].segments[0];
        assert_eq!(t.areas[0].name, "t_tdata");
        assert_eq!(
            t.refs,
            vec![("metadata".to_string(), "t_tmeta".to_string())]
        );
        let s = &vg.lvs[2].segments[0];
        assert_eq!(
            s.areas[1],
            AreaRef {
                name: "pv0".into(),
                start: 6
            }
        );
        assert_eq!(s.stripe_size, Some(128));
    }

    #[test]
    fn rejects_missing_fields_and_bad_names() {
        for (t, what) in [
            (&br#"vg { seqno = 1 extent_size = 8 }"#[..], "no id"),
            (br#"vg { id = "x" seqno = -1 extent_size = 8 }"#, "out of range"),
            (br#"vg { id = "x" seqno = 1 extent_size = 0 }"#, "extent_size is 0"),
            (br#"a { id = "x" } b { id = "y" }"#, "more than one"),
            (br#""#, "no volume group"),
            (br#"v { id = "x" seqno = 1 extent_size = 8 logical_volumes { ../x { id = "l" } } }"#, "not a valid LV name"),
            (br#"v { id = "x" seqno = 1 extent_size = 8 logical_volumes { l { id = "l" segment1 { start_extent = 0 extent_count = 1 type = "striped" stripes = ["pv0"] } } } }"#, "odd number"),
            (br#"v { id = "x" seqno = 1 extent_size = 8 logical_volumes { l { id = "l" } l { id = "m" } } }"#, "listed twice"),
            (br#"v { id = "x" seqno = 1 extent_size = 8 physical_volumes { p { id = "l" pe_start = 1 pe_count = 1 } p { id = "m" pe_start = 1 pe_count = 1 } } }"#, "listed twice"),
        ] {
            let e = decode(&parse(t).unwrap()).unwrap_err();
            assert!(e.contains(what), "{e}");
        }
    }
}
