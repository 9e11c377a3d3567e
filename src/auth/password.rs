//! Password hashing with argon2id, run off the async threads since each hash takes tens of
//! milliseconds and 19 MiB on purpose.
//!
//! Logins hash on [`PasswordWorkers`], a fixed set of threads that each own one argon2 memory
//! block for good. Allocating 19 MiB per hash and freeing it left the server at 340 MiB
//! resident after a flood in which only 18 passwords were hashed, two at a time: glibc kept
//! the freed blocks in its arenas' heaps. The free functions, for the admin command and the
//! demo seed, hash as usual on the blocking pool.
//!
//! **Invariant:** at most `threads` passwords are hashed at once by the workers, in
//! `threads` × 19 MiB allocated once; their queue never grows past what the login gate
//! admits.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use argon2::password_hash::{Output, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

/// Hashes `password` into a PHC string with a fresh random salt, on tokio's blocking pool.
///
/// # Errors
///
/// No randomness for the salt, or the hasher fails.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .context("password hashing panicked")?
}

/// `password` as a PHC string, with a fresh random salt.
fn hash_now(password: &str) -> anyhow::Result<String> {
    let mut salt = [0_u8; 16];
    getrandom::fill(&mut salt).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|error| anyhow::anyhow!("cannot encode the salt: {error}"))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|error| anyhow::anyhow!("cannot hash the password: {error}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash`, in memory of its own.
fn verify_now(password: &str, hash: &str) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(hash)
        .map_err(|error| anyhow::anyhow!("malformed password hash: {error}"))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// Whether `password` matches the PHC string `hash`, computed in `memory` when the hash's
/// parameters fit in it (they do for every hash this server makes), else in memory of its
/// own.
fn verify_in(password: &str, hash: &str, memory: &mut [Block]) -> anyhow::Result<bool> {
    let parsed = PasswordHash::new(hash)
        .map_err(|error| anyhow::anyhow!("malformed password hash: {error}"))?;
    let params = Params::try_from(&parsed)
        .map_err(|error| anyhow::anyhow!("malformed password hash parameters: {error}"))?;
    if params.block_count() > memory.len() {
        return verify_now(password, hash);
    }
    let algorithm = Algorithm::try_from(parsed.algorithm)
        .map_err(|error| anyhow::anyhow!("unknown password hash algorithm: {error}"))?;
    let version = match parsed.version {
        Some(version) => Version::try_from(version)
            .map_err(|error| anyhow::anyhow!("unknown argon2 version: {error}"))?,
        None => Version::default(),
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        anyhow::bail!("the password hash has no salt or no output");
    };
    let mut salt_bytes = [0_u8; 64];
    let salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|error| anyhow::anyhow!("malformed salt: {error}"))?;
    let argon2 = Argon2::new(algorithm, version, params);
    let computed = Output::init_with(expected.len(), |out| {
        argon2
            .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut *memory)
            .map_err(argon2::password_hash::Error::from)
    })
    .map_err(|error| anyhow::anyhow!("cannot hash the password: {error}"))?;
    // `Output`'s equality takes the same time wherever the outputs differ.
    Ok(computed == expected)
}

/// Spends what a real check costs on `password`, with a random salt, in `memory`: the work
/// done for an unknown email, so that it cannot be told from a wrong password.
fn burn_in(password: &str, memory: &mut [Block]) -> anyhow::Result<()> {
    let mut salt = [0_u8; 16];
    getrandom::fill(&mut salt).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    let mut out = [0_u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::default()
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory)
        .map_err(|error| anyhow::anyhow!("cannot hash the password: {error}"))
}

type Job = Box<dyn FnOnce(&mut [Block]) + Send>;

/// A fixed set of threads that hash and verify passwords; cheap to clone. The threads end
/// when the last clone is dropped.
#[derive(Clone)]
pub struct PasswordWorkers {
    jobs: SyncSender<Job>,
}

impl PasswordWorkers {
    /// Starts `threads` (at least 1) hashing threads, with room for `queue` waiting jobs.
    ///
    /// # Errors
    ///
    /// The operating system refuses a thread.
    pub fn start(threads: usize, queue: usize) -> anyhow::Result<Self> {
        let threads = threads.max(1);
        let (jobs, receiver) = std::sync::mpsc::sync_channel::<Job>(threads + queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("password-{index}"))
                .spawn(move || work(&receiver))
                .context("cannot start a password hashing thread")?;
        }
        Ok(Self { jobs })
    }

    /// Does the work of checking `password` against a hash, and throws it away: what a login
    /// with an unknown email costs.
    ///
    /// # Errors
    ///
    /// No randomness, the hasher fails, or the queue is full.
    pub async fn burn(&self, password: String) -> anyhow::Result<()> {
        self.run(move |memory| burn_in(&password, memory)).await?
    }

    /// Whether `password` matches the PHC string `hash`.
    ///
    /// # Errors
    ///
    /// The stored hash is malformed, or the queue is full.
    pub async fn verify(&self, password: String, hash: String) -> anyhow::Result<bool> {
        self.run(move |memory| verify_in(&password, &hash, memory))
            .await?
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            // The caller may have gone; then nobody needs the answer.
            let _ = reply.send(work(memory));
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => anyhow::bail!("the password queue is full"),
            Err(TrySendError::Disconnected(_)) => anyhow::bail!("the password threads stopped"),
        }
        answer.await.context("a password thread dropped its job")
    }
}

/// One hashing thread: allocates its memory at its first job, once, then takes jobs until
/// every sender is gone.
fn work(receiver: &Mutex<Receiver<Job>>) {
    let mut memory = Vec::new();
    loop {
        let job = receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        match job {
            Ok(job) => {
                if memory.is_empty() {
                    memory = vec![Block::default(); Params::default().block_count()];
                }
                job(&mut memory);
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hash = hash_password("correct horse".to_owned()).await.unwrap();

        assert!(hash.starts_with("$argon2id$"));
        assert!(
            PasswordWorkers::start(1, 0)
                .expect("a thread")
                .verify("correct horse".to_owned(), hash.clone())
                .await
                .unwrap()
        );
        assert!(
            !PasswordWorkers::start(1, 0)
                .expect("a thread")
                .verify("correct horse ".to_owned(), hash)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_same_password_hashes_differently_each_time() {
        let first = hash_password("demo".to_owned()).await.unwrap();
        let second = hash_password("demo".to_owned()).await.unwrap();

        assert_ne!(first, second, "each hash has its own salt");
    }

    #[tokio::test]
    async fn the_workers_verify_what_the_free_functions_hash_in_their_own_memory() {
        let workers = PasswordWorkers::start(1, 1).expect("a thread");
        let hash = hash_password("demo".to_owned()).await.unwrap();
        assert!(
            workers
                .verify("demo".to_owned(), hash.clone())
                .await
                .unwrap()
        );
        assert!(
            !workers
                .verify("demo ".to_owned(), hash.clone())
                .await
                .unwrap()
        );
        workers.burn("anything".to_owned()).await.unwrap();
        assert!(workers.verify("demo".to_owned(), hash).await.unwrap());
        assert!(
            workers
                .verify("demo".to_owned(), "plain".to_owned())
                .await
                .is_err()
        );

        // A hash of other (larger) parameters is still checked, in memory of its own.
        let params = Params::new(Params::DEFAULT_M_COST * 2, 1, 1, None).expect("params");
        let salt = SaltString::encode_b64(&[7; 16]).expect("a salt");
        let other = Argon2::from(params)
            .hash_password(b"demo", &salt)
            .expect("hashes")
            .to_string();
        assert!(workers.verify("demo".to_owned(), other).await.unwrap());
    }

    #[tokio::test]
    async fn a_malformed_hash_is_an_error_not_a_match() {
        assert!(
            PasswordWorkers::start(1, 0)
                .expect("a thread")
                .verify("demo".to_owned(), "plain".to_owned())
                .await
                .is_err()
        );
    }
}
