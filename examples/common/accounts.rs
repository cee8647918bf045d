//! bigdb's accounts, for the examples that write a database through the store: `user0000`
//! (an administrator) to `user<count - 1>`, with no usable password until
//! `confab --reset-user` gives them one.

use confab::store::{NewUser, Role, Store};

/// Creates the accounts; their ids in order.
pub fn create_users(store: &Store, count: u64) -> Result<Vec<u64>, String> {
    (0..count)
        .map(|i| {
            store
                .create_user(NewUser {
                    username: format!("user{i:04}"),
                    display_name: format!("User {i}"),
                    // Not a usable hash: these accounts exist only to own messages.
                    password_hash: "!".into(),
                    role: if i == 0 { Role::Admin } else { Role::Member },
                    must_change_password: false,
                })
                .map(|user| user.id)
                .map_err(|e| e.to_string())
        })
        .collect()
}
