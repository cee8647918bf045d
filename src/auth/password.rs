//! argon2id password hashing with a cap on how many hashes run at once, plus the rules for
//! passwords and the generator for temporary ones.

use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::Rng;
use tokio::sync::{Semaphore, oneshot};

use super::AuthError;
use crate::config::limits;

pub const MIN_PASSWORD_BYTES: usize = 12;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes and verifies passwords on a small pool of dedicated threads. Each argon2id hash
/// takes 19 MiB, so a fixed number of threads bounds the memory, and a bounded queue makes a
/// login flood wait (then get 503) instead. The working memory is reused while logins come
/// and given back after [`limits::HASH_MEMORY_IDLE`] without one.
#[derive(Clone)]
pub struct Hasher {
    /// One permit per job on the hashing threads (running or queued). The permit moves into
    /// the job and is released only when the hash is done, so a caller that goes away cannot
    /// free its slot while its work is still ahead of others.
    slots: Arc<Semaphore>,
    /// Bounded as well, though with `slots` no larger it is never found full.
    jobs: mpsc::SyncSender<Job>,
    /// How long a caller waits for a slot before giving up with `Busy`.
    wait: Duration,
}

type Job = Box<dyn FnOnce() + Send>;

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new(
            limits::CONCURRENT_HASHES,
            limits::HASH_QUEUE,
            limits::HASH_QUEUE_WAIT,
        )
    }
}

impl Hasher {
    /// `threads` hashing threads taking jobs from a queue of `queue` (running ones included).
    fn new(threads: usize, queue: usize, wait: Duration) -> Hasher {
        let queue = queue.max(1);
        let (jobs, receiver) = mpsc::sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("confab-hash-{n}"))
                .spawn(move || {
                    loop {
                        // Take one job, releasing the lock before running it. The thread
                        // holding the lock is the one that notices an idle spell.
                        let job = receiver
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .recv_timeout(limits::HASH_MEMORY_IDLE);
                        match job {
                            Ok(job) => job(),
                            Err(mpsc::RecvTimeoutError::Timeout) => release_memory(),
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Hasher {
            slots: Arc::new(Semaphore::new(queue)),
            jobs,
            wait,
        }
    }

    pub async fn hash(&self, password: String) -> Result<String, AuthError> {
        self.run(move || hash_now(&password)).await?
    }

    /// True if `password` matches `hash`. With no hash (unknown user) it still spends the time
    /// of a real check, so response times do not reveal which usernames exist.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, AuthError> {
        self.run(move || {
            let hash = hash.as_deref().unwrap_or_else(|| dummy_hash());
            verify_now(&password, hash)
        })
        .await
    }

    /// Runs `work` on a hashing thread. `Busy` if no slot frees up in time.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let permit = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| AuthError::Busy)?
            .map_err(|_| AuthError::Busy)?;
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            // A caller that hung up while queued needs no answer: skip the work (its login
            // attempt was counted when it started).
            if !done.is_closed() {
                let _ = done.send(work());
            }
            drop(permit);
        });
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => AuthError::Busy,
            mpsc::TrySendError::Disconnected(_) => {
                AuthError::Internal("the hashing threads are gone".into())
            }
        })?;
        result
            .await
            .map_err(|_| AuthError::Internal("a hashing job failed".into()))
    }
}

/// argon2id with the OWASP parameters: 19 MiB, 2 iterations, 1 lane.
fn owasp_params() -> Params {
    Params::new(19 * 1024, 2, 1, Some(HASH_BYTES)).unwrap_or_default()
}

const HASH_BYTES: usize = 32;
const SALT_BYTES: usize = 16;

/// argon2's working memory, one buffer per hash running, reused by the next: allocating
/// 19 MiB per hash and freeing it makes glibc keep a growing pile of freed blocks (seen:
/// 400 MiB after 20 logins).
static MEMORY: HashMemory = HashMemory(Mutex::new(Vec::new()));

struct HashMemory(Mutex<Vec<Vec<Block>>>);

impl HashMemory {
    /// Blocks (1 KiB each) reserved per buffer: more than glibc's largest mmap threshold
    /// (32 MiB on 64-bit), so each buffer is a mapping of its own that `free` hands back to
    /// the kernel; a smaller one could stay in the heap once freed. Only the 19 MiB argon2
    /// writes become resident.
    const RESERVED_BLOCKS: usize = 33 * 1024;

    fn take(&self, blocks: usize) -> Vec<Block> {
        let mut buffer = self
            .buffers()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(Self::RESERVED_BLOCKS));
        buffer.resize(blocks, Block::default());
        buffer
    }

    fn give_back(&self, buffer: Vec<Block>) {
        self.buffers().push(buffer);
    }

    /// Frees the kept buffers. A hash running now keeps its own (and gives it back to be
    /// released at the next idle spell). Returns how many were freed.
    fn release(&self) -> usize {
        std::mem::take(&mut *self.buffers()).len()
    }

    fn buffers(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs argon2id into `out` with reused memory.
fn argon2_into(
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let mut blocks = MEMORY.take(params.block_count());
    let hashed = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(password, salt, out, blocks.as_mut_slice());
    MEMORY.give_back(blocks);
    hashed
}

/// Gives argon2's kept working memory back to the system.
fn release_memory() {
    let freed = MEMORY.release();
    if freed > 0 {
        tracing::debug!(buffers = freed, "password hashing memory released");
    }
}

/// A PHC string: `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`.
fn hash_now(password: &str) -> Result<String, AuthError> {
    let fail =
        |e: &dyn std::fmt::Display| AuthError::Internal(format!("password hashing failed: {e}"));
    let params = owasp_params();
    let salt: [u8; SALT_BYTES] = rand::random();
    let mut out = [0u8; HASH_BYTES];
    argon2_into(params.clone(), password.as_bytes(), &salt, &mut out).map_err(|e| fail(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| fail(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| fail(&e))?),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// Checks a password against a stored PHC string, in constant time.
fn verify_now(password: &str, stored: &str) -> bool {
    let Ok(phc) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(params), Some(salt), Some(expected)) = (Params::try_from(&phc), &phc.salt, &phc.hash)
    else {
        return false;
    };
    if phc.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    let mut out = vec![0u8; expected.len()];
    argon2_into(params, password.as_bytes(), salt.as_ref(), &mut out).is_ok()
        && constant_time_eq(&out, expected.as_bytes())
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_now(&random_password()).unwrap_or_default())
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    fn hashing_memory_is_reused_and_released() {
        let memory = HashMemory(Mutex::new(Vec::new()));
        let first = memory.take(19 * 1024);
        let address = first.as_ptr();
        assert_eq!(first.len(), 19 * 1024);
        memory.give_back(first);
        let again = memory.take(19 * 1024);
        assert_eq!(again.as_ptr(), address, "the next hash reuses the buffer");
        memory.give_back(again);
        assert_eq!(memory.release(), 1);
        assert_eq!(memory.release(), 0, "nothing is kept after a release");
    }

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
        assert!(verify_now("correct horse battery", &hash));
        assert!(!verify_now("wrong horse battery", &hash));
        assert!(!verify_now("correct horse battery", "not a hash"));
    }

    /// Starts `work` through `hasher` on a task, returning the task and a flag set once the
    /// work runs.
    fn spawn_job(
        hasher: &Hasher,
        work_for: Duration,
    ) -> (
        tokio::task::JoinHandle<Result<(), AuthError>>,
        Arc<std::sync::atomic::AtomicBool>,
    ) {
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (hasher, flag) = (hasher.clone(), ran.clone());
        let task = tokio::spawn(async move {
            hasher
                .run(move || {
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(work_for);
                })
                .await
        });
        (task, ran)
    }

    async fn until(flag: &std::sync::atomic::AtomicBool) {
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_caller_that_leaves_keeps_its_slot_until_the_hash_is_done() {
        let hasher = Hasher::new(1, 1, Duration::from_millis(100));
        let (slow, running) = spawn_job(&hasher, Duration::from_millis(800));
        until(&running).await;

        slow.abort();
        let next = hasher.run(|| ()).await;

        assert!(matches!(next, Err(AuthError::Busy)), "{next:?}");
    }

    #[tokio::test]
    async fn past_the_queue_callers_get_busy_not_a_place_in_line() {
        let hasher = Hasher::new(1, 2, Duration::from_millis(50));
        let (first, running) = spawn_job(&hasher, Duration::from_millis(400));
        until(&running).await;
        let (second, _) = spawn_job(&hasher, Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(20)).await;

        let third = hasher.run(|| ()).await;

        assert!(matches!(third, Err(AuthError::Busy)), "{third:?}");
        assert!(matches!(first.await, Ok(Ok(()))));
        assert!(matches!(second.await, Ok(Ok(()))));
        assert!(hasher.run(|| ()).await.is_ok(), "slots are given back");
    }

    #[tokio::test]
    async fn a_queued_job_whose_caller_left_is_skipped() {
        let hasher = Hasher::new(1, 2, Duration::from_secs(5));
        let (first, running) = spawn_job(&hasher, Duration::from_millis(300));
        until(&running).await;
        let (abandoned, ran) = spawn_job(&hasher, Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(20)).await;

        abandoned.abort();
        let _ = first.await;
        // Jobs run in order, so once this one is done the abandoned one was dealt with.
        hasher.run(|| ()).await.expect("a later job runs");

        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn agrees_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash_now("correct horse battery").expect("hash");
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, owasp_params());
        assert!(
            reference
                .verify_password(b"correct horse battery", ours.as_str())
                .is_ok()
        );
        let theirs = reference
            .hash_password(b"correct horse battery")
            .expect("hash")
            .to_string();
        assert!(verify_now("correct horse battery", &theirs));
    }
}
