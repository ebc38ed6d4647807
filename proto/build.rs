//! Compiles the .proto files with protox (a pure-Rust protobuf compiler), so building ferry
//! needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tfplugin6.proto",
        "proto/grpc_controller.proto",
        "proto/grpc_stdio.proto",
        "proto/grpc_broker.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Clients are only used by our tests; they need no transport (channel) support.
        .build_transport(false)
        // RPCs ferry does not serve answer UNIMPLEMENTED, which clients handle.
        .generate_default_stubs(true)
        .compile_fds(descriptors)?;
    Ok(())
}
