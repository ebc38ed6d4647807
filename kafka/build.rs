//! Compiles `native/raw_request.c` against the bundled librdkafka that `rdkafka-sys` built
//! (its source tree, with the `config.h` its configure wrote, is `DEP_RDKAFKA_ROOT`), so the
//! shim sees the same struct layouts as the library it links with.

fn main() {
    println!("cargo:rerun-if-changed=native/raw_request.c");
    let root = std::env::var("DEP_RDKAFKA_ROOT")
        .expect("rdkafka-sys must build the bundled librdkafka (DEP_RDKAFKA_ROOT unset)");
    cc::Build::new()
        .file("native/raw_request.c")
        .include(format!("{root}/src"))
        .include(&root)
        .define("_GNU_SOURCE", None)
        .warnings(false)
        .compile("ferry_rdshim");
}
