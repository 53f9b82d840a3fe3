//! The `punctum` binary: parses the command line and hands over to the library.

fn main() -> std::process::ExitCode {
    punctum::cli::main()
}
