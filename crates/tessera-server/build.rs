//! Compiles the gRPC protocol files with protox (pure Rust, so a fresh machine needs no
//! `protoc`) and generates the tonic server and client code from the descriptors.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/yandex/cloud/iam/v1/iam_token_service.proto",
        "proto/yandex/cloud/endpoint/api_endpoint_service.proto",
    ];
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    Ok(())
}
