//! terraform-provider-ferry: the ferry Terraform/OpenTofu provider, served as a go-plugin.

use std::process::ExitCode;

fn main() -> ExitCode {
    tfplugin::serve_main(
        terraform_provider_ferry::provider::FerryProvider,
        tfplugin::PluginInfo {
            name: "ferry",
            version: env!("CARGO_PKG_VERSION"),
            source_address: "ferry/ferry",
        },
    )
}
