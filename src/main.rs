fn main() -> std::process::ExitCode {
    stepcall::main()
}
