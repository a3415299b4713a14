// `verify` and the -no-pie probe ask the cc crate for the C compiler of the platform this
// binary runs on; cc needs the target triple, which only a build script can see.
fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=PATCH_UWSGI_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
