//! The identity services' SQL, one store per table group: each store is a cheap handle on the
//! pool that runs the statements and maps rows into the domain types. The services above keep
//! the rules (validation, policy, what to audit) and call their store, so a query is read and
//! changed in one place. A store imports only storage and the other stores' row mapping, never
//! a service: that keeps the services free of import circles (`users` needs `sessions`, and
//! sessions read users through [`users::from_row`], not through the `Users` service). The
//! master key check in `engine.settings` has its store here too (`settings`).

pub mod audit;
pub mod sessions;
pub mod settings;
pub mod throttle;
pub mod tokens;
pub mod users;

pub use audit::AuditStore;
pub use sessions::SessionStore;
pub use settings::SettingsStore;
pub use throttle::ThrottleStore;
pub use tokens::TokenStore;
pub use users::UserStore;
