//! The `vmrescue` command.
#![deny(unsafe_code)]
#![warn(unreachable_pub)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
