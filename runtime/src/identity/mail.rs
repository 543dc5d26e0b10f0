//! Outgoing mail through SMTP (`[auth.smtp]`, lettre). Without SMTP configured the message is
//! written to the log with a warning, so a fresh install can still complete a recovery by
//! reading the link from its own log.

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::IdentityError;
use crate::config::{SmtpConfig, SmtpTls};

pub struct Mailer {
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

impl Mailer {
    pub fn new(cfg: Option<&SmtpConfig>) -> Result<Mailer, IdentityError> {
        let Some(cfg) = cfg else { return Ok(Mailer { smtp: None }) };
        let bad = |e: lettre::transport::smtp::Error| IdentityError::Config(format!("auth.smtp: {e}"));
        let builder = match cfg.tls {
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host).map_err(bad)?,
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host).map_err(bad)?,
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host),
        };
        let mut builder = builder.port(cfg.port).timeout(Some(std::time::Duration::from_secs(cfg.timeout_secs)));
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.expose().to_string()));
        }
        let from: Mailbox = cfg.from.parse().map_err(|e| IdentityError::Config(format!("auth.smtp.from: {e}")))?;
        Ok(Mailer { smtp: Some((builder.build(), from)) })
    }

    pub fn configured(&self) -> bool {
        self.smtp.is_some()
    }

    pub async fn send(&self, mail: &Mail) -> Result<(), IdentityError> {
        let to: Mailbox = mail.to.parse().map_err(|e| IdentityError::invalid("to", format!("{:?}: {e}", mail.to)))?;
        if mail.subject.contains(['\r', '\n']) {
            return Err(IdentityError::invalid("subject", "must be one line"));
        }
        let Some((transport, from)) = &self.smtp else {
            tracing::warn!(to = %mail.to, subject = %mail.subject, body = %mail.text, "no [auth.smtp] configured: the message was not sent, here it is");
            return Ok(());
        };
        let builder = Message::builder().from(from.clone()).to(to).subject(&mail.subject);
        let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(mail.text.clone());
        let message = match &mail.html {
            Some(html) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(text)
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html.clone())),
            ),
            None => builder.singlepart(text),
        }
        .map_err(|e| IdentityError::Mail(e.to_string()))?;
        transport.send(message).await.map_err(|e| IdentityError::Mail(e.to_string()))?;
        tracing::info!(to = %mail.to, subject = %mail.subject, "mail sent");
        Ok(())
    }
}
