//! The machine's RS256 signing ceiling: signatures per second with aws-lc-rs, the engine's
//! signer (`runtime/src/oidc/jwt.rs`: an RSA-2048 `RsaKeyPair`, PKCS#1 v1.5 with SHA-256), on
//! T threads for S seconds, over a JWS signing input of realistic size (a JOSE header and about
//! 400 bytes of access-token claims, base64url-encoded, as `sign_jwt` builds it).
//! `bench/oidc.sh` divides it by the signatures each token response needs to get the ceiling
//! of a grant. It also prints the CPU time per signature, which does not depend on what else
//! the machine runs meanwhile.
//!
//!   cargo run --release --example sign_ceiling -- [THREADS] [SECONDS] [CLAIMS_BYTES]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaGen, KeySize};
use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let arg = |i: usize, d: u64| args.get(i).copied().unwrap_or(d);
    let threads = arg(0, std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1));
    let seconds = arg(1, 5);
    let claims_bytes = arg(2, 400) as usize;

    // The key as the engine holds it: generated, stored as PKCS#8, parsed back.
    let generated = RsaGen::generate(KeySize::Rsa2048).map_err(|_| "rsa key generation failed")?;
    let der = generated.as_der().map_err(|_| "pkcs8 encoding failed")?;
    let key = Arc::new(RsaKeyPair::from_pkcs8(der.as_ref()).map_err(|_| "pkcs8 parse failed")?);

    let header = r#"{"alg":"RS256","kid":"0123456789abcdef0123456789abcdef","typ":"at+jwt"}"#;
    let mut claims = String::from(
        r#"{"iss":"http://127.0.0.1:8080","sub":"0192f5e4-7c1a-7b3e-9d2f-4a6b8c0d1e2f","aud":"0192f5e4-7c1a-7b3e-9d2f-4a6b8c0d1e30","client_id":"0192f5e4-7c1a-7b3e-9d2f-4a6b8c0d1e30","scope":"openid profile email offline_access","iat":1764000000,"exp":1764003600,"jti":"Jk2x8Qm4VbT9sLp0ZcR7wYh3NfD6aGe1"#,
    );
    while claims.len() + 2 < claims_bytes {
        claims.push('x');
    }
    claims.push_str("\"}");
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(&claims));
    let input = Arc::new(input.into_bytes());

    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_start = cpu_secs();
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (done, stop, key, input) = (done.clone(), stop.clone(), key.clone(), input.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let mut sig = vec![0u8; key.public_modulus_len()];
                while !stop.load(Ordering::Relaxed) {
                    // As in `sign_jwt`: a SystemRandom per signature (it is a unit struct).
                    let rng = aws_lc_rs::rand::SystemRandom::new();
                    key.sign(&RSA_PKCS1_SHA256, &rng, &input, &mut sig).map_err(|_| "RS256 signing failed".to_string())?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().map_err(|_| "a worker panicked")??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_secs().zip(cpu_start).map(|(b, a)| b - a);
    let n = done.load(Ordering::Relaxed);
    let per_sig = cpu.map(|c| format!("{:.0}", 1e6 * c / n.max(1) as f64)).unwrap_or_else(|| "?".into());
    println!(
        "RS256 RSA-2048 aws-lc-rs threads={threads} claims={} B signing input={} B: {n} signatures in {elapsed:.2} s, cpu {per_sig} us/signature = {:.1} signatures/s",
        claims.len(),
        input.len(),
        n as f64 / elapsed
    );
    Ok(())
}

/// This process's user + system CPU time (Linux: /proc/self/stat, in USER_HZ = 100 ticks).
/// Per signature, it does not depend on how much of the machine other processes took.
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}
