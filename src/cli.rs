//! Console commands an administrator runs next to the server.

use std::process::ExitCode;

use crate::config::Config;
use crate::control::{self, Request, Response};
use crate::{StartError, auth::Auth, auth::AuthError, open_store};

/// `confab --reset-user NAME`: through the running server if there is one, else directly on
/// the database.
pub async fn reset_user(config: &Config, username: &str) -> ExitCode {
    let request = Request::ResetUser {
        username: username.to_owned(),
    };
    let response = match control::request(&config.control_socket_path(), &request) {
        Ok(Some(response)) => response,
        Ok(None) => reset_offline(config, username).await,
        Err(e) => Response::Failed(format!(
            "cannot reach the running server at {}: {e}",
            config.control_socket_path().display()
        )),
    };
    match response {
        Response::TemporaryPassword(password) => {
            println!("Temporary password for {username}: {password}");
            println!(
                "{username} has been signed out everywhere and must choose a new password at next sign-in."
            );
            ExitCode::SUCCESS
        }
        Response::NoSuchUser => {
            eprintln!("confab: there is no user named '{username}'");
            ExitCode::FAILURE
        }
        Response::Failed(message) => {
            eprintln!("confab: could not reset the password: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn reset_offline(config: &Config, username: &str) -> Response {
    // Never create a database here: a mistyped --data-dir should be reported, not "fixed".
    if !config.database_path().exists() {
        return Response::Failed(format!(
            "there is no confab database in {}; pass the server's --data-dir (or CONFAB_DATA_DIR)",
            config.data_dir.display()
        ));
    }
    let store = match open_store(config) {
        Ok(store) => store,
        Err(StartError::InUse(_)) => {
            return Response::Failed(
                "the database is in use, but the server's control socket did not answer".into(),
            );
        }
        Err(e) => return Response::Failed(e.to_string()),
    };
    let result = async {
        let auth = Auth::new(store)?;
        let id = auth.user_id_by_name(username).await?;
        let (password, _revoked) = auth.reset_password(id).await?;
        Ok::<_, AuthError>(password)
    }
    .await;
    match result {
        Ok(password) => Response::TemporaryPassword(password),
        Err(AuthError::NoSuchUser) => Response::NoSuchUser,
        Err(e) => Response::Failed(e.to_string()),
    }
}
