//! Compiles the container's seccomp filter (src/seccomp_rules.rs) to BPF
//! with libseccomp, once, at build time: see src/seccomp.rs.

#[allow(dead_code)]
#[path = "src/seccomp_rules.rs"]
mod rules;

fn main() {
    println!("cargo::rerun-if-changed=src/seccomp_rules.rs");
    let (host, target) = (std::env::var("HOST").unwrap(), std::env::var("TARGET").unwrap());
    if host != target {
        panic!(
            "zookeeper's seccomp program is compiled for the build machine ({host}); cross-compiling to {target} is not supported"
        );
    }
    for (name, build) in
        [("seccomp.bpf", rules::build as fn() -> _), ("seccomp-allow-setid.bpf", rules::build_allowing_setid)]
    {
        let filter = build().unwrap_or_else(|err| panic!("building the seccomp filter: {err:#}"));
        let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join(name);
        let file =
            std::fs::File::create(&out).unwrap_or_else(|err| panic!("creating {}: {err}", out.display()));
        filter.export_bpf(&file).unwrap_or_else(|err| panic!("compiling the seccomp filter: {err:#}"));
    }
}
