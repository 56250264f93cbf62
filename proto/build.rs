fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Use the vendored protoc so a clean machine needs no system package.
    std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .bytes(".")
        .compile_protos(&["reef.proto", "cluster.proto"], &["."])?;
    println!("cargo:rerun-if-changed=reef.proto");
    println!("cargo:rerun-if-changed=cluster.proto");
    Ok(())
}
