//! Compiles every `.proto` under `proto/` with protox (no protoc needed),
//! generates Rust code with tonic-prost-build, and writes the encoded
//! descriptor set (custom options kept) to `OUT_DIR/mesh_descriptor.bin`.

use std::path::{Path, PathBuf};

fn proto_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            proto_files(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = Path::new("proto");
    println!("cargo:rerun-if-changed={}", proto_root.display());
    let mut files = Vec::new();
    proto_files(proto_root, &mut files)?;
    files.sort();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let relative: Vec<PathBuf> = files
        .iter()
        .map(|file| file.strip_prefix(proto_root).map(Path::to_path_buf))
        .collect::<Result<_, _>>()?;

    let mut compiler = protox::Compiler::new([proto_root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(&relative)?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // The encoded set keeps custom options (prost-types would drop them).
    std::fs::write(out_dir.join("mesh_descriptor.bin"), compiler.encode_file_descriptor_set())?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
