//! argon2id password hashing with a cap on how many hashes run at once, plus the rules for
//! passwords and the generator for temporary ones.

use std::sync::{Arc, Mutex, OnceLock, mpsc};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use tokio::sync::{Semaphore, oneshot};

use super::AuthError;
use crate::config::limits;

pub const MIN_PASSWORD_BYTES: usize = 12;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes and verifies passwords on a small pool of dedicated threads. Each argon2id hash
/// takes 19 MiB; the allocator keeps that memory with the thread that used it, so hashing on
/// tokio's (growing) blocking pool would pin 19 MiB per thread ever used. A fixed pool bounds
/// it, and a semaphore of the same size makes a login flood queue (then get 503) instead.
#[derive(Clone)]
pub struct Hasher {
    slots: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
}

type Job = Box<dyn FnOnce() + Send>;

impl Default for Hasher {
    fn default() -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..limits::CONCURRENT_HASHES {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("confab-hash-{n}"))
                .spawn(move || {
                    loop {
                        // Take one job, releasing the lock before running it.
                        let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Hasher {
            slots: Arc::new(Semaphore::new(limits::CONCURRENT_HASHES)),
            jobs,
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
        let _permit = tokio::time::timeout(limits::HASH_QUEUE_WAIT, self.slots.acquire())
            .await
            .map_err(|_| AuthError::Busy)?
            .map_err(|_| AuthError::Busy)?;
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.jobs
            .send(job)
            .map_err(|_| AuthError::Internal("the hashing threads are gone".into()))?;
        result
            .await
            .map_err(|_| AuthError::Internal("a hashing job failed".into()))
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
