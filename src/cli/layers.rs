//! `vmrescue layers`.

use clap::Args;
use vmrescue::layers::tree;

use super::{Target, exit, open_layout, report};

/// Arguments of `layers`.
#[derive(Args, Debug)]
pub struct LayersArgs {
    #[command(flatten)]
    target: Target,
    /// Print the tree as JSON (see the README for the format).
    #[arg(long)]
    json: bool,
}

/// Run `layers`.
pub fn run(args: &LayersArgs) -> u8 {
    let layout = match open_layout(&args.target) {
        Ok(l) => l,
        Err(e) => {
            report(&e);
            return exit::ERROR;
        }
    };
    let roots = tree::build(&layout);
    let problems = layout.all_problems();
    if args.json {
        let doc = serde_json::json!({
            "disks": roots,
            "notes": layout.notes,
            "problems": problems,
        });
        match serde_json::to_string_pretty(&doc) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                report(&e);
                return exit::ERROR;
            }
        }
    } else {
        print!("{}", tree::render_text(&roots));
        for n in &layout.notes {
            println!("{}", vmrescue::text::escape_str(n));
        }
    }
    for p in &problems {
        report(p);
    }
    if problems.is_empty() {
        exit::OK
    } else {
        exit::PROBLEMS
    }
}
