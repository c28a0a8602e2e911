//! `vmrescue info`: what `qemu-img info` prints, read by vmrescue.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use humansize::{BINARY, format_size};
use vmrescue::image::info::{Info, info_with};
use vmrescue::text::escape_str;

use super::{exit, report};

/// Output formats, as `qemu-img info --output` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Output {
    /// Lines for a person.
    Human,
    /// One JSON object (docs/json.md).
    Json,
}

/// Arguments of `info`.
#[derive(Args, Debug)]
pub(super) struct InfoArgs {
    /// The image: a raw, qcow2, VMDK, VHD, VHDX or VDI file, a block device, an
    /// NBD URI (`nbd://`, `nbd+unix://`) or `rbd:POOL/IMAGE`.
    #[arg(value_name = "IMAGE")]
    image: PathBuf,
    /// `human` or `json`, as `qemu-img info --output`.
    #[arg(long, value_enum, default_value = "human")]
    output: Output,
    /// The same as `--output json`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    ceph: super::CephArgs,
}

/// Run `info`.
pub(super) fn run(args: &InfoArgs) -> u8 {
    let opts = vmrescue::image::OpenOptions {
        ceph: args.ceph.options(),
        ..Default::default()
    };
    let facts = match info_with(&args.image, &opts) {
        Ok(i) => i,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    if args.json || args.output == Output::Json {
        /// The document: the facts and the JSON version.
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            version: u32,
            #[serde(flatten)]
            info: &'a Info,
        }
        let doc = Doc {
            version: super::JSON_VERSION,
            info: &facts,
        };
        if !super::print_json(&doc) {
            return exit::ERROR;
        }
    } else {
        out!("{}", render(&facts));
    }
    for p in &facts.problems {
        report(p);
    }
    if facts.problems.is_empty() {
        exit::OK
    } else {
        exit::PROBLEMS
    }
}

fn size(bytes: u64) -> String {
    format!("{} ({bytes} bytes)", format_size(bytes, BINARY))
}

/// The lines `qemu-img info` prints, in its order and with its labels.
fn render(i: &Info) -> String {
    let mut out = format!(
        "image: {}\nfile format: {}\nvirtual size: {}\ndisk size: {}\n",
        escape_str(&i.filename),
        i.format.name(),
        size(i.virtual_size),
        format_size(i.actual_size, BINARY),
    );
    if let Some(q) = &i.qcow2 {
        out.push_str(&format!("cluster_size: {}\n", q.cluster_size));
    }
    if let Some(c) = i.cluster_size {
        out.push_str(&format!("cluster_size: {c}\n"));
    }
    if let Some(n) = &i.nbd {
        out.push_str(&format!(
            "export: {:?}\nflags: {:#06x} ({})\nstructured replies: {}\n",
            n.export,
            n.flags,
            if n.flag_names.is_empty() {
                "none".to_string()
            } else {
                n.flag_names.join(", ")
            },
            if n.structured_replies { "yes" } else { "no" }
        ));
        if let Some([min, pref, max]) = n.block_size {
            out.push_str(&format!(
                "block sizes: minimum {min}, preferred {pref}, maximum {max}\n"
            ));
        }
        if let Some(d) = &n.description {
            out.push_str(&format!("description: {}\n", escape_str(d)));
        }
    }
    for (n, link) in i.backing_chain.iter().enumerate() {
        let label = if n == 0 {
            "backing file".to_string()
        } else {
            format!("backing file {}", n + 1)
        };
        out.push_str(&format!(
            "{label}: {} (actual path: {})\n{label} format: {}\n",
            escape_str(&link.name),
            escape_str(&link.path.display().to_string()),
            link.format
        ));
    }
    if let Some(b) = &i.backing_missing {
        out.push_str(&format!("backing file: {} (not found)\n", escape_str(b)));
    }
    if !i.snapshots.is_empty() {
        out.push_str(&format!(
            "Snapshot list:\n{:<10}{:<20}{:>7} {:<23} VM CLOCK\n",
            "ID", "TAG", "VM SIZE", "DATE"
        ));
        for s in &i.snapshots {
            let clock = s.vm_clock_nsec / 1_000_000;
            out.push_str(&format!(
                "{:<10}{:<20}{:>7} {:<23} {:02}:{:02}:{:02}.{:03}\n",
                escape_str(&s.id),
                escape_str(&s.name),
                format_size(s.vm_state_size, BINARY),
                s.date(),
                clock / 3_600_000,
                clock / 60_000 % 60,
                clock / 1000 % 60,
                clock % 1000
            ));
        }
    }
    if let Some(q) = &i.qcow2 {
        out.push_str(&format!(
            "Format specific information:\n    compat: {}\n    compression type: {}\n    \
             lazy refcounts: {}\n    refcount bits: {}\n    corrupt: {}\n    extended l2: {}\n",
            q.compat,
            q.compression_type,
            q.lazy_refcounts,
            q.refcount_bits,
            q.corrupt,
            q.extended_l2
        ));
        if let Some(d) = &q.data_file {
            out.push_str(&format!("    data file: {}\n", escape_str(d)));
        }
        if q.bitmaps {
            out.push_str("    bitmaps: stored\n");
        }
    }
    if let Some(v) = &i.vmdk {
        out.push_str("Format specific information:\n");
        if let Some(c) = v.cid {
            out.push_str(&format!("    cid: {c}\n"));
        }
        if let Some(c) = v.parent_cid {
            out.push_str(&format!("    parent cid: {c}\n"));
        }
        out.push_str(&format!(
            "    create type: {}\n    extents:\n",
            escape_str(&v.create_type)
        ));
        for (n, e) in v.extents.iter().enumerate() {
            out.push_str(&format!(
                "        [{n}]:\n            type: {}\n            virtual size: {}\n",
                e.kind, e.virtual_size
            ));
            if let Some(f) = &e.filename {
                out.push_str(&format!("            filename: {}\n", escape_str(f)));
            }
            if let Some(c) = e.cluster_size {
                out.push_str(&format!("            cluster size: {c}\n"));
            }
            if e.compressed {
                out.push_str("            compressed: true\n");
            }
        }
    }
    for d in &i.details {
        out.push_str(&format!("details: {}\n", escape_str(d)));
    }
    let held: Vec<&String> = i
        .holders
        .qemu
        .iter()
        .chain(&i.holders.writers)
        .chain(&i.holders.kernel)
        .collect();
    if i.nbd.is_some() {
        // Who else reads or writes the export is the server's business.
    } else if held.is_empty() {
        out.push_str("in use: no (no QEMU lock, writer, loop device or mount)\n");
    } else {
        for h in held {
            out.push_str(&format!("in use: {}\n", escape_str(h)));
        }
    }
    out
}
