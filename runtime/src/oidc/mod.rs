//! The OpenID Connect provider's primitives. So far: signing keys (`keys.rs`).

pub mod keys;
