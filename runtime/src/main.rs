//! `ferry-mirror`: see `cli` for the commands.

fn main() -> std::process::ExitCode {
    ferry_mirror::main()
}
