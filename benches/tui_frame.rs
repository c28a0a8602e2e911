//! TUI speed: the first full frame, and key-to-frame latency while scrolling
//! a directory of 100,000 entries. Prints numbers; asserts nothing about time.
//!
//! Run with `cargo bench --bench tui_frame`. Under `cargo test --all-targets`
//! (no `--bench` argument) it runs a quick smoke version instead.

// A benchmark may unwrap: a failure stops the run, it is not a product path.
#![allow(clippy::unwrap_used)]

#[path = "support/mod.rs"]
mod support;
#[path = "../tests/tui_support/mod.rs"]
mod tui_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use vmrescue::tui::copier::JobCopier;
use vmrescue::tui::jobs::Jobs;
use vmrescue::tui::{Action, App, AppConfig, views};

const ENTRIES: usize = 100_000;
const SMOKE_ENTRIES: usize = 5_000;

fn stats(name: &str, mut d: Vec<Duration>) {
    d.sort();
    let pick = |q: f64| d[((d.len() - 1) as f64 * q) as usize];
    println!(
        "{name:<40} n={:<5} median {:>8.3} ms   p99 {:>8.3} ms   max {:>8.3} ms",
        d.len(),
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.99).as_secs_f64() * 1e3,
        d[d.len() - 1].as_secs_f64() * 1e3
    );
}

/// `vmrescue --demo EXTRA…` in a real pseudo-terminal (120×40): time from
/// starting the program (unpacking the demo, reading its layers, opening the
/// guest root) to the first full frame whose file pane's title starts with
/// `title` and lists the guest root.
fn demo_first_frame(extra: &[&str], title: &str) -> Duration {
    let mut args = vec!["--demo"];
    args.extend_from_slice(extra);
    support::first_frame(&args, &[title, "lib64/"])
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { 5 } else { 1 };
    // The guest as it boots (its fstab read, /boot and /home opened too)
    // against the root volume alone: what the namespace adds to the first
    // screen.
    let guest: Vec<Duration> = (0..n).map(|_| demo_first_frame(&[], "guest:/")).collect();
    let volume: Vec<Duration> = (0..n)
        .map(|_| demo_first_frame(&["--volume", "vg_ta/lv_root"], "vg_ta/lv_root:/"))
        .collect();
    let median = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        v[v.len() / 2]
    };
    let added = median(&guest).as_secs_f64() - median(&volume).as_secs_f64();
    stats("vmrescue --demo to the first full frame (the guest)", guest);
    stats(
        "vmrescue --demo --volume vg_ta/lv_root to the first full frame",
        volume,
    );
    println!(
        "the guest's namespace adds {:+.1} ms to the first frame (target < 5 ms)",
        added * 1000.0
    );
    let entries = if full { ENTRIES } else { SMOKE_ENTRIES };
    let keys = if full { 1 } else { 20 };
    let dir = tempfile::tempdir().unwrap();
    let image = tui_support::make_story_image(dir.path());

    // Opening the image to the first full frame (layers scanned, guest root
    // opened and listed, everything drawn at 120×40).
    let story_fs = Arc::new(tui_support::MemOpener::story());
    let start = Instant::now();
    let layout = Arc::new(tui_support::story_layout(&image));
    let scanned = start.elapsed();
    let jobs = Jobs {
        layout: Arc::clone(&layout),
        opener: story_fs,
        copier: Arc::new(JobCopier),
    };
    let mut app = App::new(Arc::clone(&layout), AppConfig::default());
    app.resize(120, 40);
    app.start();
    jobs.run_inline(&mut app);
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    term.draw(|f| views::draw(f, &app)).unwrap();
    let first = start.elapsed();
    println!(
        "first full frame (story image, 120x40)   {:>8.3} ms (layer scan {:.3} ms)",
        first.as_secs_f64() * 1e3,
        scanned.as_secs_f64() * 1e3
    );

    // A directory of 100,000 entries.
    let mut opener = tui_support::MemOpener::story();
    opener.map.insert(
        "vg_ta/lv_root".into(),
        Arc::new(tui_support::big_dir(entries)),
    );
    let jobs = Jobs {
        opener: Arc::new(opener),
        ..jobs
    };
    let mut app = App::new(Arc::clone(&layout), AppConfig::default());
    app.resize(120, 40);
    app.start();
    jobs.run_inline(&mut app);
    app.update(&Action::MoveDown);
    let t = Instant::now();
    app.update(&Action::Open);
    jobs.run_inline(&mut app);
    println!(
        "listing /big ({entries} entries, job thread) {:>8.3} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(app.pane().unwrap().entries.len(), entries);
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut frame = |app: &App| {
        let t = Instant::now();
        term.draw(|f| views::draw(f, app)).unwrap();
        t.elapsed()
    };
    let mut run = |name: &str, app: &mut App, action: Action, n: usize| {
        let n = (n / keys).max(1);
        let mut d = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            app.update(&action);
            let _ = frame(app);
            d.push(t.elapsed());
        }
        stats(name, d);
    };
    run(
        "key-to-frame: Down (scrolling)",
        &mut app,
        Action::MoveDown,
        3000,
    );
    run("key-to-frame: PgDn", &mut app, Action::PageDown, 1000);
    run("key-to-frame: Up", &mut app, Action::MoveUp, 1000);
    run("key-to-frame: End", &mut app, Action::End, 50);
    run("key-to-frame: Home", &mut app, Action::Home, 50);
    run(
        "key-to-frame: Space (mark, move)",
        &mut app,
        Action::MarkToggle,
        1000,
    );
    app.update(&Action::FilterStart);
    let mut d = Vec::new();
    for c in "file-0999".chars() {
        let t = Instant::now();
        app.update(&Action::Insert(c));
        let _ = frame(&app);
        d.push(t.elapsed());
    }
    stats("key-to-frame: filter typing", d);
}
