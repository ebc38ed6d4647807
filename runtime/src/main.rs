//! ferry-mirror: copies Kafka topics between clusters exactly once, translates consumer-group
//! offsets exactly, and reports progress through the target cluster itself.
//!
//! A binary only: the provider and the runtime share `ferry-mirror-api` and the commands'
//! JSON output, never code. `cli` lists the commands.

mod acls;
mod cli;
mod clients;
mod connect;
mod copier;
mod end_offsets;
mod groups;
mod http;
mod mapping;
mod memory;
mod metrics;
mod partition_list;
mod progress;
mod status;
mod topics;
mod verify;

fn main() -> std::process::ExitCode {
    cli::main()
}
