fn main() {
    // The MP3 writer calls Debian's libmp3lame (libmp3lame-dev), linked dynamically.
    println!("cargo:rustc-link-lib=dylib=mp3lame");
}
