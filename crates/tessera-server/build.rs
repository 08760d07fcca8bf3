//! Compiles the gRPC protocol files with protox (pure Rust, so a fresh machine needs no
//! `protoc`), generates the tonic server and client code from the descriptors, and keeps the
//! encoded descriptors for gRPC server reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/yandex/cloud/iam/v1/iam_token_service.proto",
        "proto/yandex/cloud/iam/v1/service_account_service.proto",
        "proto/yandex/cloud/endpoint/api_endpoint_service.proto",
    ];
    let descriptors = protox::compile(files, ["proto"])?;
    // The same descriptors, encoded, for gRPC server reflection (`grpcurl list`).
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("yandex_descriptors.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        // Malformed requests are INVALID_ARGUMENT, not tonic's default INTERNAL.
        .codec_path("crate::yandex::codec::StrictCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    Ok(())
}
