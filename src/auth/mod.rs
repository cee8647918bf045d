//! Accounts and sessions: setup, login, passwords, tokens, login rate limits, and the account
//! rules (usernames, display names, passwords).

pub mod password;
mod ratelimit;
mod token;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::config::limits;
use crate::metrics::Metrics;
use crate::store::{self, NewUser, Role, Store, StoreError, User, UserPatch};
use crate::text;
use password::{Hasher, check_password_rules, constant_time_eq, random_password};
use ratelimit::{Attempt, Limiter, Policy};
use token::Keys;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("you are not signed in")]
    Unauthorized,
    #[error("this account has been disabled; ask your administrator")]
    AccountDisabled,
    #[error("choose a new password first")]
    PasswordChangeRequired,
    #[error("only administrators can do that")]
    Forbidden,
    #[error("too many attempts; try again later")]
    RateLimited { retry_after: Duration },
    #[error("the server is busy; try again in a moment")]
    Busy,
    #[error("usernames are 2 to 32 characters: letters a-z, digits, '.', '_' or '-'")]
    InvalidUsername,
    #[error(
        "display names are 1 to 64 characters, not all invisible, without text-direction controls"
    )]
    InvalidDisplayName,
    #[error("passwords are 12 to 1024 bytes long")]
    InvalidPassword,
    #[error("choose a password different from the current one")]
    PasswordUnchanged,
    #[error("that setup link is not valid")]
    InvalidSetupToken,
    #[error("confab is already set up; sign in instead")]
    AlreadySetUp,
    #[error("that username is already taken")]
    UsernameTaken,
    #[error("that would leave no enabled administrator")]
    LastAdmin,
    #[error("no such user")]
    NoSuchUser,
    #[error(transparent)]
    Store(StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UsernameTaken => AuthError::UsernameTaken,
            StoreError::NoSuchUser => AuthError::NoSuchUser,
            StoreError::AlreadySetUp => AuthError::AlreadySetUp,
            StoreError::LastAdmin => AuthError::LastAdmin,
            other => AuthError::Store(other),
        }
    }
}

pub type Result<T, E = AuthError> = std::result::Result<T, E>;

/// A signed-in user, as proven by a token whose session still exists.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub session_id: u128,
}

/// What a successful login or setup returns (and the body clients receive).
#[derive(Debug, Serialize)]
pub struct Grant {
    pub token: String,
    pub expires_at: u64,
    pub user: User,
}

/// The account service. Owns the signing keys, the hasher and the login limits.
pub struct Auth {
    store: Store,
    keys: Keys,
    hasher: Hasher,
    limiter: Limiter,
    /// The one-time first-run token; `None` once an account exists.
    setup_token: Mutex<Option<String>>,
    /// Counts refused logins.
    metrics: Arc<Metrics>,
}

impl Auth {
    pub fn new(store: Store, metrics: Arc<Metrics>) -> Result<Auth> {
        let keys = Keys::new(&store.jwt_secret()?);
        let setup_token = (store.user_count()? == 0).then(|| {
            let bytes: [u8; 24] = rand::random();
            URL_SAFE_NO_PAD.encode(bytes)
        });
        Ok(Auth {
            store,
            keys,
            hasher: Hasher::default(),
            limiter: Limiter::new(Policy::LOGIN),
            setup_token: Mutex::new(setup_token),
            metrics,
        })
    }

    pub fn setup_token(&self) -> Option<String> {
        self.setup_token
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn needs_setup(&self) -> bool {
        self.setup_token().is_some()
    }

    /// Creates the first administrator with the one-time setup token.
    pub async fn setup(
        &self,
        token: &str,
        username: &str,
        display_name: &str,
        password: String,
    ) -> Result<Grant> {
        let expected = self.setup_token().ok_or(AuthError::AlreadySetUp)?;
        if !constant_time_eq(token.as_bytes(), expected.as_bytes()) {
            return Err(AuthError::InvalidSetupToken);
        }
        let username = normalize_username(username)?;
        let display_name = normalize_display_name(display_name)?;
        check_password_rules(&password)?;
        let password_hash = self.hasher.hash(password).await?;
        let store = self.store.clone();
        let user = store::blocking(move || {
            store.create_first_admin(NewUser {
                username,
                display_name,
                password_hash,
                role: Role::Admin,
                must_change_password: false,
            })
        })
        .await?;
        *self.setup_token.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.grant(user).await
    }

    /// Signs in, and counts refusals in the metrics.
    pub async fn login(
        &self,
        username: &str,
        password: String,
        addr: Option<IpAddr>,
    ) -> Result<Grant> {
        let result = self.attempt_login(username, password, addr).await;
        match &result {
            Err(AuthError::InvalidCredentials) => self.metrics.logins_failed.inc(),
            Err(AuthError::RateLimited { .. }) => self.metrics.logins_rate_limited.inc(),
            _ => 0,
        };
        result
    }

    /// Each attempt is counted against the login limits (docs/PROTOCOL.md) when it starts, so
    /// one whose client hangs up still counts; a right password takes it back.
    async fn attempt_login(
        &self,
        username: &str,
        password: String,
        addr: Option<IpAddr>,
    ) -> Result<Grant> {
        // A name no account can have is answered at once: it is never stored in the limiter
        // and costs no hashing.
        let username = normalize_username(username).map_err(|_| AuthError::InvalidCredentials)?;
        let addr = addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let attempt = self
            .limiter
            .begin(&username, addr)
            .map_err(|retry_after| AuthError::RateLimited { retry_after })?;
        let checked = self.check_password(username, password, &attempt).await;
        match checked {
            Ok(user) => {
                self.limiter.succeeded(&attempt);
                if user.disabled {
                    return Err(AuthError::AccountDisabled);
                }
                self.grant(user).await
            }
            Err(refused @ (AuthError::InvalidCredentials | AuthError::RateLimited { .. })) => {
                tokio::time::sleep(attempt.slowdown).await;
                Err(refused)
            }
            Err(other) => {
                self.limiter.release(&attempt);
                Err(other)
            }
        }
    }

    /// The user if `password` is theirs; `InvalidCredentials` if not, or `RateLimited` when
    /// the address is over its limit and this was the username's one try from it.
    async fn check_password(
        &self,
        username: String,
        password: String,
        attempt: &Attempt,
    ) -> Result<User> {
        let found = if password.len() > password::MAX_PASSWORD_BYTES {
            None
        } else {
            let store = self.store.clone();
            store::blocking(move || store.credentials(&username)).await?
        };
        let refused = match attempt.address_limited {
            Some(retry_after) => AuthError::RateLimited { retry_after },
            None => AuthError::InvalidCredentials,
        };
        // An address over its limit gets no hashing for names nobody has: its tries are
        // bounded by the number of accounts, not by the names it can invent.
        if attempt.address_limited.is_some() && found.is_none() {
            return Err(refused);
        }
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), Some(hash)),
            None => (None, None),
        };
        match (user, self.hasher.verify(password, hash).await?) {
            (Some(user), true) => Ok(user),
            _ => Err(refused),
        }
    }

    async fn grant(&self, user: User) -> Result<Grant> {
        let ttl = limits::SESSION_TTL.as_secs();
        let store = self.store.clone();
        let user_id = user.id;
        let session = store::blocking(move || store.create_session(user_id, ttl)).await?;
        let issued_at = session.expires_at - ttl;
        let token = self
            .keys
            .issue(user.id, session.id, issued_at, session.expires_at)
            .ok_or_else(|| AuthError::Internal("could not sign a token".into()))?;
        Ok(Grant {
            token,
            expires_at: session.expires_at,
            user,
        })
    }

    /// The user behind a token, if the token is genuine and its session is alive.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated> {
        let (user_id, session_id) = self.keys.verify(token).ok_or(AuthError::Unauthorized)?;
        // Two point reads of small tables: cheaper here than a trip to the blocking pool.
        match self.store.session_user(session_id, user_id)? {
            Some(user) if user.disabled => Err(AuthError::Unauthorized),
            Some(user) => Ok(Authenticated { user, session_id }),
            None => Err(AuthError::Unauthorized),
        }
    }

    pub async fn logout(&self, session_id: u128) -> Result<()> {
        let store = self.store.clone();
        Ok(store::blocking(move || store.delete_session(session_id)).await?)
    }

    /// Changes the caller's password; every other session of theirs is revoked (returned).
    /// The current password is checked against the login limits, as a login of this user from
    /// `addr`: a stolen session must not become a way to guess the password.
    pub async fn change_password(
        &self,
        who: &Authenticated,
        current: String,
        new: String,
        addr: Option<IpAddr>,
    ) -> Result<Vec<u128>> {
        check_password_rules(&new)?;
        // Keeping the password is no change: a temporary one stays known to the admin who
        // handed it out. Answered only after the current password is proven.
        let unchanged = new == current;
        let addr = addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let attempt = self
            .limiter
            .begin(&who.user.username, addr)
            .map_err(|retry_after| AuthError::RateLimited { retry_after })?;
        let store = self.store.clone();
        let user_id = who.user.id;
        let verified = match store::blocking(move || store.password_hash(user_id)).await {
            Ok(hash) => self.hasher.verify(current, hash).await,
            Err(e) => Err(e.into()),
        };
        match verified {
            Ok(true) => self.limiter.succeeded(&attempt),
            Ok(false) => {
                tokio::time::sleep(attempt.slowdown).await;
                return Err(AuthError::InvalidCredentials);
            }
            Err(e) => {
                self.limiter.release(&attempt);
                return Err(e);
            }
        }
        if unchanged {
            return Err(AuthError::PasswordUnchanged);
        }
        let new_hash = self.hasher.hash(new).await?;
        let store = self.store.clone();
        let keep = who.session_id;
        Ok(
            store::blocking(move || store.set_password(user_id, new_hash, false, Some(keep)))
                .await?,
        )
    }

    /// Creates an account with a temporary password, returned once.
    pub async fn create_user(
        &self,
        username: &str,
        display_name: &str,
        role: Role,
    ) -> Result<(User, String)> {
        let username = normalize_username(username)?;
        let display_name = normalize_display_name(display_name)?;
        let temporary = random_password();
        let password_hash = self.hasher.hash(temporary.clone()).await?;
        let store = self.store.clone();
        let user = store::blocking(move || {
            store.create_user(NewUser {
                username,
                display_name,
                password_hash,
                role,
                must_change_password: true,
            })
        })
        .await?;
        Ok((user, temporary))
    }

    pub async fn update_user(&self, id: u64, mut patch: UserPatch) -> Result<(User, Vec<u128>)> {
        patch.username = patch
            .username
            .as_deref()
            .map(normalize_username)
            .transpose()?;
        patch.display_name = patch
            .display_name
            .as_deref()
            .map(normalize_display_name)
            .transpose()?;
        let store = self.store.clone();
        Ok(store::blocking(move || store.update_user(id, patch)).await?)
    }

    /// Gives the user a new temporary password and revokes all their sessions (returned).
    pub async fn reset_password(&self, user_id: u64) -> Result<(String, Vec<u128>)> {
        let temporary = random_password();
        let hash = self.hasher.hash(temporary.clone()).await?;
        let store = self.store.clone();
        let revoked =
            store::blocking(move || store.set_password(user_id, hash, true, None)).await?;
        Ok((temporary, revoked))
    }

    pub async fn user_by_name(&self, username: &str) -> Result<User> {
        let store = self.store.clone();
        let name = username.to_ascii_lowercase();
        let found = store::blocking(move || store.credentials(&name)).await?;
        found.map(|(user, _)| user).ok_or(AuthError::NoSuchUser)
    }
}

/// Lower-cases and checks a username: 2–32 characters of `a-z 0-9 . _ -`.
pub fn normalize_username(raw: &str) -> Result<String> {
    let name = raw.to_ascii_lowercase();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
    if (2..=32).contains(&name.len()) && name.chars().all(allowed) {
        Ok(name)
    } else {
        Err(AuthError::InvalidUsername)
    }
}

/// Trims and checks a display name: 1–64 characters, no control characters, not only
/// invisible ones, and no bidi override or isolate that could reorder the text around it.
pub fn normalize_display_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    let length = name.chars().count();
    if (1..=64).contains(&length)
        && text::is_one_line(name)
        && !text::is_blank(name)
        && !text::has_bidi_controls(name)
    {
        Ok(name.to_owned())
    } else {
        Err(AuthError::InvalidDisplayName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(
            normalize_username("Alice.B_2-x").ok().as_deref(),
            Some("alice.b_2-x")
        );
        for bad in ["a", "", "has space", "ünï", "../etc", &"x".repeat(33)] {
            assert!(normalize_username(bad).is_err(), "{bad}");
        }
    }

    /// Usernames are ASCII only, so no bidi control (nor any invisible character) can be part
    /// of one.
    #[test]
    fn usernames_cannot_carry_bidi_controls() {
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            assert!(normalize_username(&format!("bob{c}")).is_err(), "{c:?}");
        }
        assert!(normalize_username("bob\u{200B}").is_err());
    }

    #[tokio::test]
    async fn malformed_usernames_are_answered_at_once_and_never_counted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("confab.redb")).expect("open store");
        let auth = Auth::new(store, Arc::default()).expect("auth");
        let from = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        let long = "c".repeat(60 * 1024);
        let started = std::time::Instant::now();

        for n in 0..150 {
            let answer = auth
                .login(&format!("{long}{n}"), "a wrong password".into(), from)
                .await;
            assert!(matches!(answer, Err(AuthError::InvalidCredentials)));
        }

        assert_eq!(auth.limiter.tracked(), 0);
        // 150 argon2 checks on two threads would take seconds.
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "{took:?}");
    }

    #[test]
    fn display_names() {
        assert_eq!(
            normalize_display_name("  Alice  ").ok().as_deref(),
            Some("Alice")
        );
        assert!(normalize_display_name("   ").is_err());
        assert!(normalize_display_name(&"é".repeat(64)).is_ok());
        assert!(normalize_display_name(&"é".repeat(65)).is_err());
        assert!(normalize_display_name("a\nb").is_err());
        assert!(normalize_display_name("a\u{2028}b").is_err());
        assert!(normalize_display_name("\u{200B}\u{FEFF}").is_err());
        assert!(normalize_display_name("Bob\u{202E}nimdA").is_err());
        assert!(normalize_display_name("\u{2066}Bob\u{2069}").is_err());
        assert_eq!(
            normalize_display_name("Bob \u{1F469}\u{200D}\u{1F4BB}")
                .ok()
                .as_deref(),
            Some("Bob \u{1F469}\u{200D}\u{1F4BB}")
        );
    }
}
