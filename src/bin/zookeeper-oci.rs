//! `zookeeper-oci`: zookeeper's OCI runtime, runc's command line
//! (src/runtime.rs), for podman's `--runtime` and containerd's
//! `BinaryName`.

fn main() {
    let code = zookeeper::runtime::main(std::env::args_os().collect());
    std::process::exit(code);
}
