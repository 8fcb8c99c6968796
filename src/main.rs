/// mimalloc: the request path allocates and frees many small buffers on several threads;
/// glibc's malloc spent about a tenth of the gateway's CPU there under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    wa_gateway::cli::main()
}
