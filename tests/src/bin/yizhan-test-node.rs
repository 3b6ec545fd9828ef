//! The `yizhan` program, built inside this test crate so that Cargo rebuilds it before the
//! tests run and hands its path to them (`CARGO_BIN_EXE_yizhan-test-node`).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    yizhan_node::cli::main()
}
