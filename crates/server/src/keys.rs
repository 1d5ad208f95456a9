//! Secrets at rest: Argon2id for passwords, a keyed hash (HMAC-SHA-256 with the server secret)
//! for random tokens and device keys, so a copy of the database alone reveals none of them.

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::sync::{
    Arc,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};

use crate::{error::ApiError, log_throttle::LogThrottle};

/// Hashes tokens and device keys with the server secret.
#[derive(Clone)]
pub struct Keyring {
    mac: Hmac<Sha256>,
}

impl Keyring {
    pub fn new(secret: &[u8]) -> Self {
        Keyring { mac: Hmac::new_from_slice(secret).expect("HMAC takes any key length") }
    }

    /// The keyed hash stored in place of `token`.
    pub fn hash(&self, token: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A fresh random token with a readable prefix (`w_` web, `m_` mobile access, `r_` refresh,
    /// `pp_dev_` device key).
    pub fn new_token(prefix: &str) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
    }
}

/// Hashes map keys that are already keyed hashes ([`Keyring::hash`]) by folding their bytes, in
/// place of SipHash: without the server secret nobody can choose them, so they need no hashing
/// against flooding, and spreading them is done.
#[derive(Clone, Copy, Default)]
pub struct KeyHashes;

impl std::hash::BuildHasher for KeyHashes {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

/// See [`KeyHashes`].
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(23) ^ u64::from_le_bytes(word);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Device key hash → what is known by it.
pub type ByKeyHash<V> = std::collections::HashMap<[u8; 32], V, KeyHashes>;

/// Hashes map keys the server issued itself (device and tenant ids, route templates) with
/// foldhash, seeded at random per map, in place of SipHash: a device poll looks such ids up
/// several times. Only for keys no caller can choose: a device id or tenant id reaches these maps
/// once its device key (or an account's session) was checked, and names something the server
/// created; a key a caller writes (a username, an address, a token) keeps SipHash.
pub type Ids = foldhash::fast::RandomState;

/// The most characters a password has: the one a person chooses, and the one a sign-in or a
/// password change checks (counted in characters, not bytes: a Bangla password of 256 letters
/// that was allowed is also read back).
pub const PASSWORD_MAX_CHARS: usize = 256;

/// The one rule of a password a person chooses (an account's, one's own new one, the master's
/// from the environment or the command line): 8 to [`PASSWORD_MAX_CHARS`] characters.
pub fn password_allowed(password: &str) -> bool {
    (8..=PASSWORD_MAX_CHARS).contains(&password.chars().count())
}

/// Whether a password given to be checked (a sign-in, the current one of a change) is short
/// enough to be worth hashing: longer than any allowed password, it is refused before the work.
pub fn password_checkable(password: &str) -> bool {
    password.chars().count() <= PASSWORD_MAX_CHARS
}

/// Argon2id hash of a password, computed off the async threads.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default().hash_password(password.as_bytes()).map(|hash| hash.to_string())
    })
    .await
    .map_err(|_| ApiError::internal())?
    .map_err(|_| ApiError::internal())
}

/// Whether `password` matches its stored Argon2id hash (about 19 MiB and tens of milliseconds:
/// call it through [`PasswordChecks`], which bounds how many run and keeps them off async threads).
fn password_matches(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

/// Password checks behind a bounded queue: Argon2id takes about 19 MiB per hash, so at most
/// `max_at_once` run together (on the blocking pool); a check that finds no free slot within
/// [`PasswordChecks::WAIT`] is answered 503 `BUSY` with `Retry-After` instead of piling up memory.
pub struct PasswordChecks {
    slots: Arc<tokio::sync::Semaphore>,
    started: AtomicU64,
    running: Arc<AtomicUsize>,
    peak: AtomicUsize,
}

impl PasswordChecks {
    /// The longest a sign-in waits for a free hashing slot (real time: it bounds memory, not a rule).
    pub const WAIT: std::time::Duration = std::time::Duration::from_secs(2);

    pub fn new(max_at_once: usize) -> Self {
        PasswordChecks {
            slots: Arc::new(tokio::sync::Semaphore::new(max_at_once.max(1))),
            started: AtomicU64::new(0),
            running: Arc::new(AtomicUsize::new(0)),
            peak: AtomicUsize::new(0),
        }
    }

    /// Checks `password` against `stored` once a slot is free, or answers 503 `BUSY`. The slot is
    /// held by the hashing itself, so a client that hangs up does not free it early.
    pub async fn verify(&self, password: String, stored: String) -> Result<bool, ApiError> {
        let permit = tokio::time::timeout(Self::WAIT, Arc::clone(&self.slots).acquire_owned())
            .await
            .map_err(|_| {
                // A flood of sign-ins would say this at every one: one line in ten seconds.
                static BUSY_LOG: LogThrottle = LogThrottle::every(std::time::Duration::from_secs(10));
                if let Some(more) = BUSY_LOG.admit(std::time::Instant::now()) {
                    tracing::warn!(
                        more_answered_busy_since_last_line = more,
                        "every password check slot is taken; a sign-in was answered BUSY"
                    );
                }
                ApiError::busy(Self::WAIT.as_secs())
            })?
            .map_err(|_| ApiError::internal())?;
        self.started.fetch_add(1, Ordering::Relaxed);
        let running = Arc::clone(&self.running);
        let now_running = running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now_running, Ordering::SeqCst);
        tokio::task::spawn_blocking(move || {
            let valid = password_matches(&password, &stored);
            running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            valid
        })
        .await
        .map_err(|_| ApiError::internal())
    }

    /// How many password hashes were run so far.
    pub fn hashes_run(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// The most hashes that ran at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// A hash to verify against when the username is unknown, so both cases take the same time.
pub async fn decoy_hash() -> &'static str {
    static DECOY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DECOY.get_or_init(|| async { hash_password(Keyring::new_token("")).await.unwrap_or_default() }).await
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[tokio::test]
    async fn passwords_are_argon2id_and_verify() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let checks = PasswordChecks::new(1);
        assert!(checks.verify("correct horse".into(), hash.clone()).await.unwrap());
        assert!(!checks.verify("wrong".into(), hash).await.unwrap());
        assert!(!checks.verify("".into(), decoy_hash().await.into()).await.unwrap());
        assert_eq!(checks.hashes_run(), 3);
    }

    #[test]
    fn key_hashes_spread_over_a_map() {
        use std::hash::BuildHasher;
        let keyring = Keyring::new(b"secret");
        let hashes: Vec<u64> = (0..1000).map(|i| KeyHashes.hash_one(keyring.hash(&format!("pp_dev_{i}")))).collect();
        // A map takes its bucket from the low bits and its tag from the top seven: both spread as
        // random values would (about 632 of 1024 buckets hit by 1000 keys; all 128 tags).
        let buckets: HashSet<u64> = hashes.iter().map(|h| h & 1023).collect();
        let tags: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(buckets.len() > 560, "{} buckets", buckets.len());
        assert_eq!(tags.len(), 128);
        let mut map = ByKeyHash::default();
        map.extend((0..1000).map(|i| (keyring.hash(&format!("pp_dev_{i}")), i)));
        assert_eq!(map.get(&keyring.hash("pp_dev_7")), Some(&7));
        assert_eq!(map.get(&keyring.hash("pp_dev_1000")), None);
    }

    #[test]
    fn token_hashes_depend_on_the_secret() {
        let token = Keyring::new_token("w_");
        assert!(token.starts_with("w_") && token.len() > 40);
        assert_eq!(Keyring::new(b"a").hash(&token), Keyring::new(b"a").hash(&token));
        assert_ne!(Keyring::new(b"a").hash(&token), Keyring::new(b"b").hash(&token));
    }
}
