//! Bounds on text before it reaches a query, a throttle key or the audit log. A leaf of the
//! identity services: the others use it, it uses none of them.

use super::IdentityError;

/// The longest identifier (an email address, RFC 5321's path limit) any lookup accepts.
pub const MAX_IDENTIFIER_BYTES: usize = 254;

/// An identifier that can be looked up at all: at most [`MAX_IDENTIFIER_BYTES`] and free of
/// control characters (PostgreSQL refuses a NUL in text, which surfaced as a 500).
pub fn check_identifier(field: &'static str, value: &str) -> Result<(), IdentityError> {
    check_text(field, value, MAX_IDENTIFIER_BYTES)
}

/// Text that may reach a query: at most `max` bytes, without control characters.
pub fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), IdentityError> {
    if value.len() > max {
        return Err(IdentityError::invalid(field, format!("is longer than {max} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(IdentityError::invalid(field, "contains control characters"));
    }
    Ok(())
}
