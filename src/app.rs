//! The server's shared state and the operations that span accounts and live connections.

use std::net::IpAddr;
use std::sync::Arc;

use crate::auth::{Auth, AuthError, Authenticated};
use crate::blobs::Blobs;
use crate::config::Config;
use crate::hub::Hub;
use crate::lan::join::Addresses;
use crate::media::Media;
use crate::metrics::Metrics;
use crate::search::Search;
use crate::store::{Role, Store, User, UserPatch};
use crate::tls::CaCertificate;

/// Everything a request handler may need, shared behind one `Arc`.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub auth: Auth,
    pub hub: Hub,
    pub search: Search,
    /// Uploaded files, thumbnails and profile pictures.
    pub blobs: Blobs,
    /// Decodes pictures, a few at a time.
    pub media: Media,
    /// What the server counts about itself (`/metrics`).
    pub metrics: Arc<Metrics>,
    /// Where the server listens, for the links given to people.
    pub addresses: Addresses,
    /// The local CA's certificate, served at `/trust` (`--tls auto` only).
    pub trust: Option<CaCertificate>,
    /// Backups being written (nightly, or for `confab backup`): stopped at shutdown.
    pub backups: crate::backup::Running,
}

impl App {
    pub async fn end_session(&self, who: &Authenticated) -> Result<(), AuthError> {
        self.auth.logout(who.session_id).await?;
        self.hub.end_sessions(who.user.id, &[who.session_id]);
        Ok(())
    }

    pub async fn change_password(
        &self,
        who: &Authenticated,
        current: String,
        new: String,
        addr: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let revoked = self.auth.change_password(who, current, new, addr).await?;
        self.hub.end_sessions(who.user.id, &revoked);
        Ok(())
    }

    /// A new account and its temporary password; everyone's directory learns of it.
    pub async fn create_user(
        &self,
        username: &str,
        display_name: &str,
        role: Role,
    ) -> Result<(User, String), AuthError> {
        let (user, temporary) = self.auth.create_user(username, display_name, role).await?;
        self.hub.announce_user(&user);
        self.hub.announce_joined_general(&user).await;
        Ok((user, temporary))
    }

    pub async fn update_user(&self, id: u64, patch: UserPatch) -> Result<User, AuthError> {
        let (user, revoked) = self.auth.update_user(id, patch).await?;
        self.hub.end_sessions(id, &revoked);
        self.hub.announce_user(&user);
        Ok(user)
    }

    /// A new temporary password for the user; they are signed out everywhere.
    pub async fn reset_password(&self, id: u64) -> Result<String, AuthError> {
        let (temporary, revoked) = self.auth.reset_password(id).await?;
        self.hub.end_sessions(id, &revoked);
        Ok(temporary)
    }
}
