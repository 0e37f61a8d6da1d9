//! The `kumo` binary: parse the command line and hand over to the library.

fn main() -> std::process::ExitCode {
    // A pre-started sandbox shell must do nothing but wait and exec: no
    // runtime, no threads, no argument parsing.
    if std::env::args_os().nth(1).is_some_and(|a| a == kumo::sandbox::SHELL_ARG) {
        kumo::sandbox::shell_main();
    }
    kumo::cli::main()
}
