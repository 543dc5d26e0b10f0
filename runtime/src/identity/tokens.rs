//! Single-use, short-lived tokens for emailed links (recovery, email verification). The link
//! carries 256 random bits; the table keeps their SHA-256, so a database reader cannot use a
//! pending link. Consuming is one UPDATE guarded by `used_at IS NULL` and the expiry: of two
//! concurrent uses exactly one wins.

use std::sync::Arc;

use super::mail::Mailer;
use super::store::TokenStore;
use super::users::{User, Users};
use super::IdentityError;
use crate::crypto::{random_token, sha256_hex};
use crate::storage::{Db, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Recovery,
    Verify,
}

impl Purpose {
    pub fn parse(s: &str) -> Option<Purpose> {
        match s {
            "recovery" => Some(Purpose::Recovery),
            "verify" => Some(Purpose::Verify),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Recovery => "recovery",
            Purpose::Verify => "verify",
        }
    }
    /// Recovery links are short-lived (they reset a password); verification links less so.
    pub fn default_ttl_secs(self) -> u64 {
        match self {
            Purpose::Recovery => 3600,
            Purpose::Verify => 24 * 3600,
        }
    }
}

/// A mail that carries a fresh link token: `{link}` in `text` becomes `url` followed by the
/// token. Sent by [`MailTokens::mail_link`], after the response.
#[derive(Debug, Clone)]
pub struct LinkMail {
    pub purpose: Purpose,
    pub ttl_secs: Option<u64>,
    pub url: String,
    pub subject: String,
    pub text: String,
}

/// The emailed-link tokens service (recovery, verification).
#[derive(Clone)]
pub struct MailTokens {
    store: TokenStore,
    users: Users,
    mailer: Arc<Mailer>,
}

impl MailTokens {
    pub fn new(db: Db, users: Users, mailer: Arc<Mailer>) -> MailTokens {
        MailTokens { store: TokenStore::new(db), users, mailer }
    }

    /// Issues a link token for `user_id` and mails it to the user (nothing for a disabled
    /// user). Runs after the response (`users.mail_link`), so the answer's timing is the same
    /// whether or not there was anyone to mail.
    pub async fn mail_link(&self, user_id: &str, m: &LinkMail) -> Result<(), IdentityError> {
        let user = self.users.get(user_id).await?;
        if user.disabled {
            return Ok(());
        }
        let token = self.issue(user_id, m.purpose, m.ttl_secs).await?;
        let link = format!("{}{token}", m.url);
        let mail = super::mail::Mail { to: user.email, subject: m.subject.clone(), text: m.text.replace("{link}", &link), html: None };
        self.mailer.send(&mail).await
    }

    /// A new link token for `user_id`. Earlier unused tokens of the same purpose stop working:
    /// only the newest link is valid.
    pub async fn issue(&self, user_id: &str, purpose: Purpose, ttl_secs: Option<u64>) -> Result<String, IdentityError> {
        self.users.get(user_id).await?;
        let ttl = ttl_secs.unwrap_or(purpose.default_ttl_secs()).clamp(60, 7 * 24 * 3600);
        let token = random_token(32);
        let now = Timestamp::now();
        let expires = Timestamp(now.0 + chrono::Duration::seconds(ttl as i64));
        self.store.issue(&sha256_hex(token.as_bytes()), user_id, purpose.as_str(), now, expires).await?;
        Ok(token)
    }

    /// Uses up a token: the user it was issued to, or `InvalidToken` (unknown, used, expired, or
    /// of another purpose: one message for all).
    pub async fn consume(&self, token: &str, purpose: Purpose) -> Result<User, IdentityError> {
        if token.is_empty() || token.len() > 200 {
            return Err(IdentityError::InvalidToken);
        }
        let now = Timestamp::now();
        let user_id = self.store.consume(&sha256_hex(token.as_bytes()), purpose.as_str(), now).await?;
        match user_id {
            Some(id) => self.users.get(&id).await,
            None => Err(IdentityError::InvalidToken),
        }
    }
}
