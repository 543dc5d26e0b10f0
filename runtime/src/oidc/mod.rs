//! The OpenID Connect provider's primitives. So far: signing keys (`keys.rs`) and JWTs
//! signed and verified with them (`jwt.rs`).

pub mod clients;
pub mod jwt;
pub mod keys;
