//! terraform-provider-ferry: the ferry Terraform/OpenTofu provider, served as a go-plugin.

use std::process::ExitCode;

use terraform_provider_ferry::plugin::{self, handshake};

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!("terraform-provider-ferry {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let cookie = std::env::var(handshake::MAGIC_COOKIE_KEY).ok();
    let versions = std::env::var("PLUGIN_PROTOCOL_VERSIONS").ok();
    if let Err(refusal) = handshake::check(cookie.as_deref(), versions.as_deref()) {
        eprintln!("{}", refusal.message());
        return ExitCode::from(1);
    }
    plugin::logging::init();

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
    match runtime.block_on(plugin::server::serve(client_cert)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "the ferry provider stopped with an error"
            );
            ExitCode::from(1)
        }
    }
}
