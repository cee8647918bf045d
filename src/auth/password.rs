//! argon2id password hashing with a cap on how many hashes run at once, plus the rules for
//! passwords and the generator for temporary ones.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use tokio::sync::Semaphore;

use super::AuthError;
use crate::config::limits;

pub const MIN_PASSWORD_BYTES: usize = 12;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes and verifies passwords off the async runtime. Each argon2id hash takes 19 MiB, so a
/// semaphore bounds how many run at once: a login flood queues (then gets 503) instead of
/// exhausting memory.
#[derive(Clone)]
pub struct Hasher {
    slots: Arc<Semaphore>,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher {
            slots: Arc::new(Semaphore::new(limits::CONCURRENT_HASHES)),
        }
    }
}

impl Hasher {
    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        self.run(move || hash_now(&password)).await?
    }

    /// True if `password` matches `hash`. With no hash (unknown user) it still spends the time
    /// of a real check, so response times do not reveal which usernames exist.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, AuthError> {
        self.run(move || {
            let hash = hash.as_deref().unwrap_or_else(|| dummy_hash());
            argon2().verify_password(password.as_bytes(), hash).is_ok()
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let permit =
            tokio::time::timeout(limits::HASH_QUEUE_WAIT, self.slots.clone().acquire_owned())
                .await
                .map_err(|_| AuthError::Busy)?
                .map_err(|_| AuthError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| AuthError::Internal(format!("hashing task failed: {e}")))
    }
}

/// argon2id with the OWASP parameters: 19 MiB, 2 iterations, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_now(password: &str) -> Result<String, AuthError> {
    argon2()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Internal(format!("password hashing failed: {e}")))
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_now(&random_password()).unwrap_or_default())
}

pub fn check_password_rules(password: &str) -> Result<(), AuthError> {
    if (MIN_PASSWORD_BYTES..=MAX_PASSWORD_BYTES).contains(&password.len()) {
        Ok(())
    } else {
        Err(AuthError::InvalidPassword)
    }
}

/// A one-time password that is easy to read aloud or type: 4 groups of 5 characters without
/// look-alikes (no 0/o, 1/l/i), about 98 bits.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let groups: Vec<String> = (0..4)
        .map(|_| {
            (0..5)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect()
        })
        .collect();
    groups.join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_passwords_pass_the_rules() {
        let p = random_password();
        assert_eq!(p.len(), 23);
        assert!(check_password_rules(&p).is_ok());
        assert_ne!(p, random_password());
    }

    #[test]
    fn hashes_verify_and_are_argon2id() {
        let hash = hash_now("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            argon2()
                .verify_password(b"correct horse battery", hash.as_str())
                .is_ok()
        );
        assert!(
            argon2()
                .verify_password(b"wrong horse battery", hash.as_str())
                .is_err()
        );
    }
}
