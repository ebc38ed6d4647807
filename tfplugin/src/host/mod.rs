//! go-plugin hosting: the handshake with Terraform/OpenTofu, AutoMTLS, hclog-style logs, the
//! side services every plugin serves next to the provider, and signals.

pub mod handshake;
pub mod intent;
pub mod logging;
pub mod server;
pub mod services;
pub mod tls;

use std::process::ExitCode;

use crate::resource::Provider;

/// Who the plugin is, for messages and log names.
#[derive(Debug, Clone, Copy)]
pub struct PluginInfo {
    /// The provider's local name, e.g. "ferry" (binary `terraform-provider-ferry`).
    pub name: &'static str,
    pub version: &'static str,
    /// The registry source address users declare, e.g. "ferry/ferry".
    pub source_address: &'static str,
}

/// The whole `main` of a provider binary: `--version`, the handshake checks, logging, then
/// serving until the CLI stops us.
pub fn serve_main<P: Provider>(provider: P, info: PluginInfo) -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!("terraform-provider-{} {}", info.name, info.version);
        return ExitCode::SUCCESS;
    }
    let cookie = std::env::var(handshake::MAGIC_COOKIE_KEY).ok();
    let versions = std::env::var("PLUGIN_PROTOCOL_VERSIONS").ok();
    if let Err(refusal) = handshake::check(cookie.as_deref(), versions.as_deref()) {
        eprintln!("{}", refusal.message(&info));
        return ExitCode::from(1);
    }
    logging::init(info.name);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(1);
        }
    };
    let client_cert = std::env::var("PLUGIN_CLIENT_CERT").ok();
    match runtime.block_on(server::serve(provider, client_cert)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "the provider stopped with an error"
            );
            ExitCode::from(1)
        }
    }
}
