//! Time-ordered identifiers in UUID form (version 7 layout: 48 bits of Unix milliseconds, then
//! random bits), so keyset pagination by id is also pagination by creation time.

use rand::RngCore;

pub fn new_id() -> String {
    let ms = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = (b[6] & 0x0f) | 0x70; // version 7
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Whether `s` looks like an id this module made (cheap input check before a query).
pub fn is_id(s: &str) -> bool {
    s.len() == 36 && s.char_indices().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_sort_by_time_and_parse() {
        let a = super::new_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::new_id();
        assert!(a < b);
        assert!(super::is_id(&a));
        assert!(!super::is_id("../etc"));
    }
}
