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
    let mut spec: openapiv3::OpenAPI = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
    let frame_types = server_frame_types(&spec)?;
    without_channels(&mut spec);
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
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let out = out_dir.join("agora_client.rs");
    std::fs::write(&out, code).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    let known = out_dir.join("server_frame_types.rs");
    let list = format!(
        "/// The `type`s of the contract's `ServerFrame` (its discriminator mapping).\n\
         pub(crate) const KNOWN_FRAME_TYPES: &[&str] = &{frame_types:?};\n"
    );
    std::fs::write(&known, list).map_err(|e| format!("cannot write {}: {e}", known.display()))
}

/// The discriminator values of `ServerFrame`, so the client tells a frame type newer than
/// itself (ignored, as the contract says) from a known frame that does not decode (an error).
fn server_frame_types(spec: &openapiv3::OpenAPI) -> Result<Vec<String>, String> {
    let schema = spec
        .components
        .as_ref()
        .and_then(|c| c.schemas.get("ServerFrame"))
        .ok_or("the contract has no ServerFrame schema")?;
    let openapiv3::ReferenceOr::Item(schema) = schema else {
        return Err("ServerFrame is a reference".into());
    };
    let mapping = &schema
        .schema_data
        .discriminator
        .as_ref()
        .ok_or("ServerFrame has no discriminator")?
        .mapping;
    Ok(mapping.keys().cloned().collect())
}

fn quote_inner() -> proc_macro2::TokenStream {
    "crate::Credentials".parse().expect("a valid Rust path")
}

/// Leaves out WebSocket channels (`x-dropshot-websocket`): progenitor would make each a raw
/// upgrade call; `agora_client::realtime` is the typed client of their frames instead (the frame
/// schemas stay, so their types are generated).
fn without_channels(spec: &mut openapiv3::OpenAPI) {
    for (_, item) in spec.paths.paths.iter_mut() {
        if let openapiv3::ReferenceOr::Item(item) = item
            && item
                .get
                .as_ref()
                .is_some_and(|op| op.extensions.contains_key("x-dropshot-websocket"))
        {
            item.get = None;
        }
    }
    spec.paths.paths.retain(
        |_, item| !matches!(item, openapiv3::ReferenceOr::Item(i) if i.iter().next().is_none()),
    );
}
