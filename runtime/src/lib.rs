//! assay-engine: an identity provider whose user-facing routes are Lua flows over Rust
//! primitives. See ARCHITECTURE.md for the map.

pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod identity;
pub mod lua;
pub mod modules;
pub mod net;
pub mod oidc;
pub mod request;
pub mod secret_file;
pub mod server;
pub mod services;
pub mod stdlib;
pub mod storage;
pub mod templates;
