fn main() -> std::process::ExitCode {
    stepcall::app::main()
}
