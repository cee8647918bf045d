//! Session tokens: HS256 JWTs whose algorithm is pinned. A token only names a session; the
//! session itself lives in the store, so revoking it kills the token.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The only algorithm confab signs with or accepts.
const ALGORITHM: Algorithm = Algorithm::HS256;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id, as a decimal string (JWT `sub` is a string).
    pub sub: String,
    /// Session id, hex.
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
}

pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Keys {
    pub fn new(secret: &[u8]) -> Keys {
        let mut validation = Validation::new(ALGORITHM);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn issue(&self, user_id: u64, session_id: u128, iat: u64, exp: u64) -> Option<String> {
        let claims = Claims {
            sub: user_id.to_string(),
            sid: format!("{session_id:032x}"),
            iat,
            exp,
        };
        jsonwebtoken::encode(&Header::new(ALGORITHM), &claims, &self.encoding).ok()
    }

    /// The (user id, session id) a valid, unexpired token names.
    pub fn verify(&self, token: &str) -> Option<(u64, u128)> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        let user_id = data.claims.sub.parse().ok()?;
        let session_id = u128::from_str_radix(&data.claims.sid, 16).ok()?;
        Some((user_id, session_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn now() -> u64 {
        crate::store::now_secs()
    }

    #[test]
    fn issues_and_verifies() {
        let keys = Keys::new(&[7; 32]);
        let token = keys.issue(3, 99, now(), now() + 60).expect("token");
        assert_eq!(keys.verify(&token), Some((3, 99)));
    }

    #[test]
    fn refuses_other_secret_expired_and_alg_none() {
        let keys = Keys::new(&[7; 32]);
        let other = Keys::new(&[8; 32]);
        let forged = other.issue(3, 99, now(), now() + 60).expect("token");
        assert_eq!(keys.verify(&forged), None);

        let expired = keys.issue(3, 99, now() - 120, now() - 60).expect("token");
        assert_eq!(keys.verify(&expired), None);

        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"3","sid":"63","iat":{},"exp":{}}}"#,
            now(),
            now() + 60
        ));
        assert_eq!(keys.verify(&format!("{header}.{claims}.")), None);
    }
}
