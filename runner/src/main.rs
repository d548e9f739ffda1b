fn main() -> std::process::ExitCode {
    termgate_runner::cli::main()
}
