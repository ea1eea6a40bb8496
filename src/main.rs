//! The `cairn` command line. Each subcommand lives in `src/cli/`; this file
//! only parses arguments, sets up logging and prints a failure once, prefixed
//! with the program's name.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // `serve` sets up its own logging from its settings (text or JSON).
    if !matches!(args.command, cli::Command::Serve(_)) {
        cli::init_logging(args.verbose);
    }
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("cairn: error: {}", cli::render_error(&error));
            ExitCode::FAILURE
        }
    }
}
