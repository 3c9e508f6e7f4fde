//! Embeds the SWML JSON Schema. The schema is SignalWire's (MIT, shipped in the `signalwire-sdk`
//! PyPI package); dialtone does not vendor it. Looked up, in order: `DIALTONE_SWML_SCHEMA`, a
//! `shared/spec/swml.schema.json` beside any ancestor of this crate, the installed
//! `signalwire-sdk` Python package.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=DIALTONE_SWML_SCHEMA");
    let found = from_env().or_else(from_shared).or_else(from_python_package);
    let Some(path) = found else {
        panic!(
            "SWML schema not found. Set DIALTONE_SWML_SCHEMA=/path/to/swml.schema.json, or \
             `pip install signalwire-sdk==3.7.5` (it ships signalwire/schema.json)."
        );
    };
    println!("cargo:rerun-if-changed={}", path.display());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::copy(&path, out.join("swml.schema.json")).expect("copy SWML schema into OUT_DIR");
}

fn from_env() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var("DIALTONE_SWML_SCHEMA").ok()?);
    p.is_file().then_some(p)
}

fn from_shared() -> Option<PathBuf> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").ok()?);
    manifest
        .ancestors()
        .map(|dir: &Path| dir.join("shared/spec/swml.schema.json"))
        .find(|p| p.is_file())
}

fn from_python_package() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import importlib.util,os;s=importlib.util.find_spec('signalwire');\
             print(os.path.join(os.path.dirname(s.origin),'schema.json'))",
        ])
        .output()
        .ok()?;
    let p = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    p.is_file().then_some(p)
}
