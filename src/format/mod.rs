//! Text and diagnostics: files as read and positions in them, the YAML tree, the format's types
//! as written (the source of the JSON Schema), and the masking of secrets in any text.

pub mod allowed_signers;
pub mod diagnostic;
pub mod digest;
pub mod file;
pub mod mask;
pub mod model;
pub mod schema;
pub mod source;
pub mod version;
pub mod yaml;
