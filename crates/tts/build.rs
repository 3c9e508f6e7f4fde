//! Links Debian's flite (BSD-style licence) dynamically: `apt-get install flite1-dev`.
fn main() {
    for lib in [
        "flite_cmu_us_kal",
        "flite_cmu_us_slt",
        "flite_cmulex",
        "flite_usenglish",
        "flite",
    ] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
}
