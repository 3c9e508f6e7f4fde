fn main() {
    // The T.30 engine and its modems are Debian's spandsp (libspandsp-dev 0.0.6), linked
    // dynamically; it reads and writes the pages' TIFF files through libtiff itself.
    println!("cargo:rustc-link-lib=dylib=spandsp");
}
