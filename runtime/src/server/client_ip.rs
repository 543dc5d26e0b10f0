//! The client's address when the engine sits behind reverse proxies. Login throttling and the
//! audit log key on it: with the TCP peer alone, every user behind a proxy shares one address
//! and one lockout.
//!
//! Only a peer inside `[server] trusted_proxies` is believed, and only in the one header
//! `[server] forwarded_header` names (a proxy that sets one of them passes the other through
//! from the client untouched, so reading both would let anyone choose their address). The
//! header is walked from the right (each proxy appends the address it saw): proxies we trust
//! are skipped and the first address that is not one of them is the client. Anything
//! malformed on the way means "unknown", and the peer is used.

use std::net::IpAddr;

use http::HeaderMap;

/// Hops read from the right of the header at most: more proxies than this in a chain is a
/// misconfiguration or an attack, and the walk must stay cheap whatever a client sends.
const MAX_HOPS: usize = 16;
/// Longest entry read as an address (`"[v6]:port"` with quotes fits in far less).
const MAX_ENTRY: usize = 64;

pub use crate::net::{Cidr, ForwardedHeader};

/// The client's address: the peer, or (when the peer is a trusted proxy) what the proxies say.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr], header: ForwardedHeader) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let name = match header {
        ForwardedHeader::XForwardedFor => "x-forwarded-for",
        ForwardedHeader::Forwarded => "forwarded",
    };
    // Header lines in reverse, each line's entries in reverse: the nearest proxy first.
    let entries = headers.get_all(name).iter().rev().flat_map(|v| v.as_bytes().rsplit(|b| *b == b',')).take(MAX_HOPS);
    let mut leftmost = None;
    for entry in entries {
        let addr = std::str::from_utf8(entry).ok().and_then(|e| match header {
            ForwardedHeader::XForwardedFor => parse_node(e),
            ForwardedHeader::Forwarded => forwarded_for(e).and_then(parse_node),
        });
        let Some(addr) = addr else { return peer };
        if !is_trusted(addr) {
            return addr;
        }
        leftmost = Some(addr);
    }
    // Every hop is a trusted proxy (or there is no header): the farthest one is the client.
    leftmost.unwrap_or(peer)
}

/// The `for=` value of one `Forwarded` element (`for=x;proto=https;by=y`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v)
    })
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, each possibly quoted. `unknown` and obfuscated names are `None`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if s.len() > MAX_ENTRY {
        return None;
    }
    let s = s.trim();
    let s = match s.strip_prefix('"') {
        Some(inner) => inner.strip_suffix('"')?,
        None => s,
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return v6.parse::<std::net::Ipv6Addr>().ok().map(|a| IpAddr::V6(a).to_canonical());
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (v4, port) = s.split_once(':')?;
    if !is_port(port) {
        return None;
    }
    v4.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| Cidr::parse(s).unwrap_or_else(|e| unreachable(&e))).collect()
    }

    #[allow(clippy::panic)]
    fn unreachable(e: &str) -> Cidr {
        panic!("{e}")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            if let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_str(v)) {
                h.append(n, v);
            }
        }
        h
    }

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;
    const FWD: ForwardedHeader = ForwardedHeader::Forwarded;

    #[test]
    fn cidr_parsing_and_matching() {
        let c = cidrs(&["10.0.0.0/8", "127.0.0.1", "2001:db8::/32", "::1", "192.168.1.7/20"]);
        assert!(c[0].contains(ip("10.255.1.2")));
        assert!(!c[0].contains(ip("11.0.0.1")));
        assert!(c[1].contains(ip("127.0.0.1")) && !c[1].contains(ip("127.0.0.2")));
        assert!(c[2].contains(ip("2001:db8:ffff::1")) && !c[2].contains(ip("2001:db9::1")));
        assert!(c[3].contains(ip("::1")));
        assert!(c[4].contains(ip("192.168.15.1")) && !c[4].contains(ip("192.168.16.1")));
        // An IPv4 client seen through a dual-stack socket.
        assert!(c[0].contains(ip("::ffff:10.1.2.3")));
        assert!(Cidr::parse("0.0.0.0/0").is_ok_and(|c| c.contains(ip("8.8.8.8")) && !c.contains(ip("::1"))));
        for bad in ["", "10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/", "10.0.0.0/+8", "example.com", "10.0.0.0/8/8"] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_says() {
        let h = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(client_ip(ip("198.51.100.1"), &h, &[], XFF), ip("198.51.100.1"));
        assert_eq!(client_ip(ip("198.51.100.1"), &h, &cidrs(&["10.0.0.0/8"]), XFF), ip("198.51.100.1"));
    }

    #[test]
    fn walks_right_to_left_past_trusted_proxies() {
        let trusted = cidrs(&["10.0.0.0/8", "127.0.0.1"]);
        // The client put a spoofed address first; the proxies appended the real one and theirs.
        let h = headers("x-forwarded-for", &["6.6.6.6, 203.0.113.9, 10.0.0.2"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted, XFF), ip("203.0.113.9"));
        // Several header lines count as one list, in order.
        let h = headers("x-forwarded-for", &["6.6.6.6", "203.0.113.9:5555", "10.0.0.2"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted, XFF), ip("203.0.113.9"));
        // Every hop trusted: the farthest is the client.
        let h = headers("x-forwarded-for", &["10.1.1.1, 10.0.0.2"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted, XFF), ip("10.1.1.1"));
        // No header: the peer.
        assert_eq!(client_ip(ip("127.0.0.1"), &HeaderMap::new(), &trusted, XFF), ip("127.0.0.1"));
        // IPv6, bare and bracketed with a port.
        let h = headers("x-forwarded-for", &["2001:db8::7"]);
        assert_eq!(client_ip(ip("::ffff:127.0.0.1"), &h, &trusted, XFF), ip("2001:db8::7"));
        let h = headers("x-forwarded-for", &["[2001:db8::8]:443"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted, XFF), ip("2001:db8::8"));
    }

    #[test]
    fn malformed_means_the_peer() {
        let trusted = cidrs(&["127.0.0.1"]);
        for bad in ["unknown", "203.0.113.9:http", "not an address", "[2001:db8::1", "1.2.3.4, ", "\"1.2.3.4"] {
            let h = headers("x-forwarded-for", &[bad]);
            assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted, XFF), ip("127.0.0.1"), "{bad:?}");
        }
        let long = format!("203.0.113.9{}", " ".repeat(100));
        assert_eq!(client_ip(ip("127.0.0.1"), &headers("x-forwarded-for", &[&long]), &trusted, XFF), ip("127.0.0.1"));
    }

    #[test]
    fn the_walk_is_bounded() {
        // A long chain of trusted hops stops after MAX_HOPS; a huge spoofed prefix is never read.
        let trusted = cidrs(&["10.0.0.0/8", "127.0.0.1"]);
        let chain = vec!["10.0.0.1"; 100].join(", ");
        assert_eq!(client_ip(ip("127.0.0.1"), &headers("x-forwarded-for", &[&chain]), &trusted, XFF), ip("10.0.0.1"));
        let big = format!("{}, 203.0.113.9", "x".repeat(100_000));
        assert_eq!(client_ip(ip("127.0.0.1"), &headers("x-forwarded-for", &[&big]), &trusted, XFF), ip("203.0.113.9"));
    }

    #[test]
    fn forwarded_header() {
        let trusted = cidrs(&["127.0.0.1", "10.0.0.0/8"]);
        let h = headers("forwarded", &["for=6.6.6.6, for=\"[2001:db8::1]:4711\";proto=https;by=10.0.0.1, For=10.0.0.3"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted, FWD), ip("2001:db8::1"));
        let h = headers("forwarded", &["proto=https;for=203.0.113.9:8080"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted, FWD), ip("203.0.113.9"));
        for bad in ["for=unknown", "for=_hidden", "proto=https", "for=\"[2001:db8::1]:x\""] {
            assert_eq!(client_ip(ip("127.0.0.1"), &headers("forwarded", &[bad]), &trusted, FWD), ip("127.0.0.1"), "{bad:?}");
        }
        // Only the configured header counts: X-Forwarded-For is ignored when Forwarded is chosen.
        let h = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted, FWD), ip("127.0.0.1"));
        assert!(ForwardedHeader::parse("X-Forwarded-For").is_ok() && ForwardedHeader::parse("x-real-ip").is_err());
    }
}
