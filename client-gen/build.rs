//! Generates the Rust client from the contract with progenitor (builder interface).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let contract = PathBuf::from("../openapi.yaml");
    println!("cargo:rerun-if-changed=../openapi.yaml");
    match generate(&contract) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}: {e}", contract.display());
            ExitCode::FAILURE
        }
    }
}

fn generate(contract: &PathBuf) -> Result<(), String> {
    let text = std::fs::read_to_string(contract).map_err(|e| e.to_string())?;
    let spec: openapiv3::OpenAPI = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
    let mut settings = progenitor::GenerationSettings::default();
    settings
        .with_interface(progenitor::InterfaceStyle::Builder)
        .with_tag(progenitor::TagStyle::Merged)
        .with_inner_type(quote_inner())
        .with_hooks(progenitor::HooksMode::Expected);
    let mut generator = progenitor::Generator::new(&settings);
    let tokens = generator
        .generate_tokens(&spec)
        .map_err(|e| e.to_string())?;
    let file: syn::File = syn::parse2(tokens).map_err(|e| e.to_string())?;
    let code = prettyplease::unparse(&file);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?)
        .join("agora_client.rs");
    std::fs::write(&out, code).map_err(|e| format!("cannot write {}: {e}", out.display()))
}

fn quote_inner() -> proc_macro2::TokenStream {
    "crate::Credentials".parse().expect("a valid Rust path")
}
