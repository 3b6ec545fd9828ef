//! `yizhan`: the node binary. Everything but the allocator lives in the library, so the
//! integration tests can build the same program as their own binary.

use std::process::ExitCode;

// glibc's malloc raises its mmap threshold after the first large free, so the deflate
// buffers Automerge allocates on every save() end up fragmenting the heap: measured
// ~300 KB of RSS per cached document instead of ~20 KB. mimalloc does not have that
// problem (see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    yizhan_node::cli::main()
}
