//! Signing keys in `auth.jwks_keys`: one active key per algorithm (RS256 by default, ES256 and
//! EdDSA on demand), rotated on demand, the retired ones kept and published so that what they
//! signed still verifies. Private keys are PKCS#8 sealed with AES-256-GCM under a key derived
//! from the master key, with the kid as associated data, so a row copied under another kid does
//! not open. Key material never leaves this file: callers get kids and public JWKs.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::encoding::AsDer;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

use crate::identity::error::is_unique_violation;
use std::sync::Arc;

pub use super::store::KeyInfo;
use super::store::{KeyStore, RetireFirst};
use crate::config::OidcProviderConfig;
use crate::identity::secrets::ServerKeys;
use crate::identity::IdentityError;
use crate::storage::{Db, Timestamp};

#[derive(Debug, Clone, Copy)]
enum Retire {
    No,
    Always,
    OlderThan(Timestamp),
}

/// The algorithms keys can be made for, by their JOSE names.
pub const ALGORITHMS: &[&str] = &["RS256", "ES256", "EdDSA"];
pub const DEFAULT_ALG: &str = "RS256";

fn check_alg(alg: &str) -> Result<(), IdentityError> {
    if ALGORITHMS.contains(&alg) {
        Ok(())
    } else {
        Err(IdentityError::invalid("alg", format!("{alg:?} is not one of {}", ALGORITHMS.join(", "))))
    }
}

/// A new key pair: (PKCS#8 private key, public JWK without kid).
fn generate(alg: &str) -> Result<(Vec<u8>, serde_json::Value), IdentityError> {
    let fail = |what: &str| IdentityError::Internal(format!("cannot generate a {alg} key: {what}"));
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    match alg {
        "RS256" => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| fail("rsa"))?;
            let der = pair.as_der().map_err(|_| fail("pkcs8"))?;
            let public = pair.public_key();
            let jwk = serde_json::json!({
                "kty": "RSA",
                "n": b64(public.modulus().big_endian_without_leading_zero()),
                "e": b64(public.exponent().big_endian_without_leading_zero()),
            });
            Ok((der.as_ref().to_vec(), jwk))
        }
        "ES256" => {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|_| fail("p-256"))?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).map_err(|_| fail("p-256"))?;
            let point = pair.public_key().as_ref(); // 0x04 || x || y
            if point.len() != 65 {
                return Err(fail("unexpected point encoding"));
            }
            let jwk = serde_json::json!({ "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]) });
            Ok((doc.as_ref().to_vec(), jwk))
        }
        "EdDSA" => {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| fail("ed25519"))?;
            let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| fail("ed25519"))?;
            let jwk = serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref()) });
            Ok((doc.as_ref().to_vec(), jwk))
        }
        other => Err(IdentityError::invalid("alg", format!("{other:?} is not supported"))),
    }
}

/// The signing keys service: key lifecycle here, JWS signing and verification in `jwt.rs`.
#[derive(Clone)]
pub struct SigningKeys {
    pub(super) store: KeyStore,
    pub(super) rules: OidcProviderConfig,
    pub(super) keys: Arc<ServerKeys>,
    /// Parsed signing keys by kid, and the active kid of each algorithm.
    pub(super) cache: Arc<Signers>,
}

impl SigningKeys {
    pub fn new(db: Db, rules: OidcProviderConfig, keys: Arc<ServerKeys>) -> SigningKeys {
        SigningKeys { store: KeyStore::new(db), rules, keys, cache: Default::default() }
    }
}

fn sealing_key(keys: &ServerKeys) -> Result<LessSafeKey, IdentityError> {
    let key = keys.derive("assay/jwks-private-keys/v1");
    let unbound = UnboundKey::new(&AES_256_GCM, &key).map_err(|_| IdentityError::Internal("aes-256-gcm key".into()))?;
    Ok(LessSafeKey::new(unbound))
}

/// base64(nonce || ciphertext || tag).
fn seal(keys: &ServerKeys, kid: &str, plain: &[u8]) -> Result<String, IdentityError> {
    let nonce_bytes: [u8; NONCE_LEN] = rand::random();
    let mut buf = plain.to_vec();
    sealing_key(keys)?
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(kid.as_bytes()), &mut buf)
        .map_err(|_| IdentityError::Internal("cannot seal a private key".into()))?;
    let mut out = nonce_bytes.to_vec();
    out.extend_from_slice(&buf);
    Ok(STANDARD.encode(out))
}

/// The PKCS#8 key sealed by [`seal`]; fails if the master key or the kid differ.
pub fn open(keys: &ServerKeys, kid: &str, sealed: &str) -> Result<Vec<u8>, IdentityError> {
    let bad = || IdentityError::Internal(format!("the private key of {kid} does not open with this master key"));
    let raw = STANDARD.decode(sealed).map_err(|_| bad())?;
    if raw.len() < NONCE_LEN + 16 {
        return Err(bad());
    }
    let (nonce, rest) = raw.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
    let mut buf = rest.to_vec();
    let plain = sealing_key(keys)?.open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf).map_err(|_| bad())?;
    Ok(plain.to_vec())
}

impl SigningKeys {
    /// The active key of `alg`, creating one if there is none (any number of engines may race
    /// here: the unique index on active keys lets one win and the others read its key).
    pub async fn ensure(&self, alg: &str) -> Result<String, IdentityError> {
        check_alg(alg)?;
        if let Some(kid) = self.active_kid(alg).await? {
            return Ok(kid);
        }
        match self.insert_key(alg, Retire::No).await {
            Ok(Some(kid)) => Ok(kid),
            Ok(None) => Err(IdentityError::Internal(format!("no {alg} key was made"))),
            Err(IdentityError::Db(e)) if is_unique_violation(&e) => {
                self.active_kid(alg).await?.ok_or_else(|| IdentityError::Internal(format!("no active {alg} key after a race")))
            }
            Err(e) => Err(e),
        }
    }

    /// Retires the active key of `alg` (it stays published) and makes a new one active, in one
    /// transaction; returns the new kid.
    pub async fn rotate(&self, alg: &str) -> Result<String, IdentityError> {
        check_alg(alg)?;
        self.insert_key(alg, Retire::Always).await?.ok_or_else(|| IdentityError::Internal(format!("no {alg} key was made")))
    }

    async fn active_kid(&self, alg: &str) -> Result<Option<String>, IdentityError> {
        Ok(self.store.active_kid(alg).await?)
    }

    /// Rotates each algorithm whose active key is older than `[auth.oidc_provider]
    /// key_rotation_days`, and deletes retired keys past `key_retention_days`. Safe on any
    /// number of engines at once: the retiring UPDATE is conditional on the key's age, so after
    /// the first engine commits, the others' UPDATE matches no row and they make no key.
    /// Returns the kids it made.
    pub async fn maintain(&self) -> Result<Vec<String>, IdentityError> {
        let cfg = &self.rules;
        let mut made = Vec::new();
        if cfg.key_rotation_days > 0 {
            let cutoff = Timestamp(Timestamp::now().0 - chrono::Duration::days(cfg.key_rotation_days as i64));
            let algs = self.store.algs_active_before(cutoff).await?;
            for alg in algs {
                if let Some(kid) = self.insert_key(&alg, Retire::OlderThan(cutoff)).await? {
                    tracing::info!(kid, alg, "signing key rotated on schedule");
                    made.push(kid);
                }
            }
        }
        if cfg.key_retention_days > 0 {
            let cutoff = Timestamp(Timestamp::now().0 - chrono::Duration::days(cfg.key_retention_days as i64));
            let pruned = self.store.prune_retired(cutoff).await?;
            if pruned > 0 {
                tracing::info!(pruned, "retired signing keys pruned");
            }
        }
        Ok(made)
    }

    /// Makes a new active key of `alg`; with `retire`, first retires the current one (always,
    /// or only if it is older than a cutoff, in which case `None` means another engine did it).
    async fn insert_key(&self, alg: &str, retire: Retire) -> Result<Option<String>, IdentityError> {
        let alg_owned = alg.to_string();
        // RSA generation takes tens of milliseconds: not on an async worker.
        let (private, mut jwk) =
            tokio::task::spawn_blocking(move || generate(&alg_owned)).await.map_err(|e| IdentityError::Internal(e.to_string()))??;
        let kid = crate::crypto::random_token(16);
        if let Some(obj) = jwk.as_object_mut() {
            obj.insert("kid".into(), kid.clone().into());
            obj.insert("alg".into(), alg.into());
            obj.insert("use".into(), "sig".into());
        }
        let sealed = seal(&self.keys, &kid, &private)?;
        let now = Timestamp::now();
        let retire = match retire {
            Retire::No => RetireFirst::No,
            Retire::Always => RetireFirst::Always(now),
            Retire::OlderThan(t) => RetireFirst::OlderThan(t),
        };
        if !self.store.insert_active(alg, retire, &kid, &jwk.to_string(), &sealed, now).await? {
            return Ok(None);
        }
        Ok(Some(kid))
    }

    /// Every key not pruned, active first, newest first.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, IdentityError> {
        let keys = self.store.list().await?;
        Ok(keys)
    }

    /// The JWK Set (RFC 7517) of every published key.
    pub async fn jwks(&self) -> Result<serde_json::Value, IdentityError> {
        let keys: Vec<serde_json::Value> = self.list().await?.into_iter().map(|k| k.public_jwk).collect();
        Ok(serde_json::json!({ "keys": keys }))
    }
}

/// How long an engine keeps signing with the active kid it last read.
const ACTIVE_KID_TTL: Duration = Duration::from_secs(5);

/// A parsed private key, ready to sign (parsed once per kid: a kid's key never changes).
pub(super) enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

#[derive(Default)]
/// Parsed keys by kid, and the active kid of each algorithm with when it was read.
pub struct Signers {
    by_kid: Mutex<HashMap<String, Arc<Signer>>>,
    active: Mutex<HashMap<String, (String, Instant)>>,
}

/// The key cache, the only place parsed key material is held.
impl SigningKeys {
    pub(super) async fn active_kid_cached(&self, alg: &str) -> Result<String, IdentityError> {
        if let Ok(cache) = self.cache.active.lock() {
            if let Some((kid, at)) = cache.get(alg) {
                if at.elapsed() < ACTIVE_KID_TTL {
                    return Ok(kid.clone());
                }
            }
        }
        let kid = self.ensure(alg).await?;
        if let Ok(mut cache) = self.cache.active.lock() {
            cache.insert(alg.to_string(), (kid.clone(), Instant::now()));
        }
        Ok(kid)
    }

    pub(super) async fn signer(&self, kid: &str) -> Result<Arc<Signer>, IdentityError> {
        if let Some(s) = self.cache.by_kid.lock().ok().and_then(|m| m.get(kid).cloned()) {
            return Ok(s);
        }
        let row = self.store.sealed(kid).await?;
        let (alg, sealed) = row.ok_or_else(|| IdentityError::Internal(format!("signing key {kid} vanished")))?;
        let der = open(&self.keys, kid, &sealed)?;
        let bad = || IdentityError::Internal(format!("signing key {kid} does not parse"));
        let signer = Arc::new(match alg.as_str() {
            "RS256" => Signer::Rsa(RsaKeyPair::from_pkcs8(&der).map_err(|_| bad())?),
            "ES256" => Signer::Ec(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).map_err(|_| bad())?),
            "EdDSA" => Signer::Ed(Ed25519KeyPair::from_pkcs8(&der).map_err(|_| bad())?),
            _ => return Err(bad()),
        });
        if let Ok(mut m) = self.cache.by_kid.lock() {
            m.insert(kid.to_string(), signer.clone());
        }
        Ok(signer)
    }
}
