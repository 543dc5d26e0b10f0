//! The machine's Argon2id ceiling: hashes per second with the engine's parameters and a
//! 32-byte secret (the pepper), on T threads for S seconds, each thread reusing one memory
//! buffer (the fastest way the argon2 crate offers, and the engine's). `bench/login.sh`
//! compares password logins per second against it.
//!
//!   cargo run --release --example argon2_ceiling -- [THREADS] [SECONDS] [M_KIB] [T] [P]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let arg = |i: usize, d: u64| args.get(i).copied().unwrap_or(d);
    let threads = arg(0, std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1));
    let seconds = arg(1, 10);
    let (m, t, p) = (arg(2, 19 * 1024) as u32, arg(3, 2) as u32, arg(4, 1) as u32);
    let params = Params::new(m, t, p, None).map_err(|e| e.to_string())?;
    let pepper = [7u8; 32];
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (done, stop, params) = (done.clone(), stop.clone(), params.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let argon = Argon2::new_with_secret(&pepper, Algorithm::Argon2id, Version::V0x13, params).map_err(|e| e.to_string())?;
                let mut memory = vec![Block::default(); argon.params().block_count()];
                let mut out = [0u8; 32];
                while !stop.load(Ordering::Relaxed) {
                    let salt: [u8; 16] = rand::random();
                    argon
                        .hash_password_into_with_memory(b"correct horse battery staple", &salt, &mut out, &mut memory)
                        .map_err(|e| e.to_string())?;
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
    let n = done.load(Ordering::Relaxed);
    println!("argon2id m={m} t={t} p={p} threads={threads}: {n} hashes in {elapsed:.2} s = {:.1} hashes/s", n as f64 / elapsed);
    Ok(())
}
