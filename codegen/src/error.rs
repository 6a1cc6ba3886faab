//! Generator errors. Every error about the document names a JSON pointer into it.

/// Why code could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// The document is not YAML/JSON or not an OpenAPI 3.0 document.
    #[error("{file}: cannot read the contract: {message}")]
    Parse { file: String, message: String },
    /// The document uses a construct the generator does not support, or breaks a convention it relies on.
    #[error("{file}#{pointer}: {message}")]
    Unsupported {
        file: String,
        pointer: String,
        message: String,
    },
    /// typify rejected a schema.
    #[error("{file}#{pointer}: cannot generate a Rust type: {message}")]
    Typify {
        file: String,
        pointer: String,
        message: String,
    },
}

/// An error about a location in the document, before the file name is attached.
#[derive(Debug)]
pub(crate) struct At {
    pub pointer: String,
    pub message: String,
}

impl At {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}
