//! The one integration-test binary (see Kanidm's DO_NOT_ADD_MORE_TESTS_HERE: one binary links
//! once). Every case runs twice, on SQLite and on PostgreSQL: `sqlite::<case>` and
//! `postgres::<case>`. The PostgreSQL half needs `ASSAY_TEST_PG_URL` (tests/run provides it)
//! and fails, never skips, without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;
mod cases;
mod harness;
mod identity;
mod layers;
mod oidc;
mod pages;
mod phases;
mod provider;
mod relying_party;
mod schema;
mod security;
mod security_oidc;
mod security_sandbox;
mod security_server;

/// Every case the list below names, whichever file holds it.
mod all_cases {
    pub use crate::browser::*;
    pub use crate::cases::*;
    pub use crate::identity::*;
    pub use crate::oidc::*;
    pub use crate::pages::*;
    pub use crate::phases::*;
    pub use crate::provider::*;
    pub use crate::relying_party::*;
    pub use crate::schema::*;
    pub use crate::security::*;
    pub use crate::security_oidc::*;
    pub use crate::security_sandbox::*;
    pub use crate::security_server::*;
}

/// Cases that need the fixed default port take turns.
pub static DEFAULT_PORT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::all_cases::$case(crate::harness::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::all_cases::$case(crate::harness::Backend::Postgres).await
                }
            )*
        }
    };
}

on_both_backends!(
    serve_with_no_config,
    admin_key_written_once,
    readiness,
    config_errors,
    example_config_loads,
    flow_and_template_override,
    lua_error_and_runaway,
    sandbox,
    sandbox_pattern_budget,
    sandbox_shared_tables_locked,
    sandbox_env_for_flows,
    module_switching,
    migrations_twice_and_concurrently,
    migrated_schemas_agree,
    body_limit,
    http_basics,
    graceful_shutdown,
    timeouts,
    stdlib_examples,
    run_scripts,
    bad_flows_stop_startup,
    console_in_browser,
    login_and_logout,
    registration_and_verification,
    recovery_by_mail,
    brute_force_throttling,
    admin_api,
    users_create_cli,
    rehash_and_expiry,
    signing_keys,
    tokens_survive_rotation,
    jwks_admin_api,
    jwks_console_pane,
    oidc_clients_admin_api,
    clients_console_pane,
    auth_admin_client,
    scheduled_rotation,
    backchannel_logout,
    provider_key_rotation,
    provider_malformed_requests,
    consent_and_claims_overrides,
    oidc_relying_party,
    oversized_fields_are_refused_at_once,
    csrf_needs_the_sessions_own_token,
    recovery_is_throttled,
    nul_bytes_are_refused,
    login_audit_names_its_session,
    login_burst_gets_503_not_500,
    deleted_client_tokens_die,
    max_age_zero_forces_login,
    introspection_by_resource_servers_only,
    resource_server_in_console,
    too_many_parameters,
    trusted_proxy_client_address,
    spoofed_forwarding_ignored,
    declared_too_large,
    hsts_header,
    claims_hook_reads_but_cannot_write,
    every_page_has_the_header_policy,
    flow_libraries_override_file_by_file,
);
