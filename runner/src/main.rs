fn main() -> std::process::ExitCode {
    termgate_runner::main()
}
