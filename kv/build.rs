//! Declares `cfg(agora_loom)`, set through RUSTFLAGS for the breaker's model-checking run, so it is not an unexpected cfg.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(agora_loom)");
}
