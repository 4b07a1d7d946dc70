//! The `spareplan` command line: see `spareplan --help`.

fn main() -> std::process::ExitCode {
    spareplan::cli::main()
}
