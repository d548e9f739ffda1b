fn main() -> std::process::ExitCode {
    termgate_console::main()
}
