//! Where the tests find the standards' JSON schemas. The ODCS schema comes
//! with datacontract-cli, which `scripts/install-tools.sh` installs into
//! `.tools/datacontract`; the ODPS schema is not packaged anywhere the
//! tests install from, so it is read from `MESH_ODPS_SCHEMA` when set and
//! its checks are skipped (saying so) otherwise.

use std::path::{Path, PathBuf};

/// The ODCS version the contracts are written in.
pub const ODCS_VERSION: &str = "3.1.0";

/// The ODCS schema shipped by the datacontract-cli installed under
/// `repository/.tools`, or what is missing and how to get it.
pub fn odcs(repository: &Path) -> Result<PathBuf, String> {
    let lib = repository.join(".tools/datacontract/lib");
    let file = format!("datacontract/schemas/odcs-{ODCS_VERSION}.schema.json");
    let found = std::fs::read_dir(&lib).ok().into_iter().flatten().flatten().find_map(|python| {
        let path = python.path().join("site-packages").join(&file);
        path.exists().then_some(path)
    });
    found.ok_or_else(|| {
        format!(
            "{}/python*/site-packages/{file} is missing: run scripts/install-tools.sh \
             (scripts/test.sh does), which installs datacontract-cli",
            lib.display()
        )
    })
}

/// The ODPS v1.0.0 schema named by `MESH_ODPS_SCHEMA`, or why there is none.
pub fn odps() -> Result<PathBuf, String> {
    match std::env::var_os("MESH_ODPS_SCHEMA") {
        Some(path) if Path::new(&path).exists() => Ok(PathBuf::from(path)),
        Some(path) => {
            Err(format!("MESH_ODPS_SCHEMA names {}, which does not exist", Path::new(&path).display()))
        }
        None => Err("MESH_ODPS_SCHEMA is not set: set it to the ODPS v1.0.0 JSON schema \
                     (odps-v1.0.0.schema.json from the ODPS project) to check the ODPS documents"
            .into()),
    }
}
