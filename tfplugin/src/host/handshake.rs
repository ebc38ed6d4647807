//! The go-plugin handshake: the magic cookie check and the line printed on stdout.

use base64::Engine;

pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// go-plugin's own handshake format version.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// Terraform plugin protocol major version we speak.
pub const APP_PROTOCOL_VERSION: u32 = 6;

/// Why the binary will not start as a plugin.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    NotLaunchedByTerraform,
    ProtocolNotOffered(String),
}

impl Refusal {
    pub fn message(&self, info: &super::PluginInfo) -> String {
        let binary = format!("terraform-provider-{}", info.name);
        match self {
            Refusal::NotLaunchedByTerraform => format!(
                "This is {binary} {}, a plugin for Terraform and OpenTofu. \
                 It is not meant to be run directly: declare it in your configuration \
                 (required_providers {{ {} = {{ source = \"{}\" }} }}) and run `terraform init`.",
                info.version, info.name, info.source_address
            ),
            Refusal::ProtocolNotOffered(offered) => format!(
                "{binary} speaks plugin protocol {APP_PROTOCOL_VERSION}, but this client offers \
                 only {offered:?}. Use Terraform 1.0 or later, or any OpenTofu release."
            ),
        }
    }
}

/// Checks the environment a plugin client sets before starting us.
pub fn check(cookie: Option<&str>, protocol_versions: Option<&str>) -> Result<(), Refusal> {
    if cookie != Some(MAGIC_COOKIE_VALUE) {
        return Err(Refusal::NotLaunchedByTerraform);
    }
    if let Some(offered) = protocol_versions {
        let ours = APP_PROTOCOL_VERSION.to_string();
        if !offered.split(',').any(|v| v.trim() == ours) {
            return Err(Refusal::ProtocolNotOffered(offered.to_string()));
        }
    }
    Ok(())
}

/// The single line that tells the client where we listen and which certificate we present.
/// The certificate is DER in unpadded standard base64, as go-plugin reads it.
pub fn line(address: &str, server_cert_der: Option<&[u8]>) -> String {
    let cert = server_cert_der
        .map(|der| base64::engine::general_purpose::STANDARD_NO_PAD.encode(der))
        .unwrap_or_default();
    format!("{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|tcp|{address}|grpc|{cert}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_without_the_cookie() {
        assert_eq!(check(None, None), Err(Refusal::NotLaunchedByTerraform));
        assert_eq!(
            check(Some("wrong"), None),
            Err(Refusal::NotLaunchedByTerraform)
        );
        let info = super::super::PluginInfo {
            name: "demo",
            version: "1.2.3",
            source_address: "example/demo",
        };
        let text = Refusal::NotLaunchedByTerraform.message(&info);
        assert!(text.contains("terraform-provider-demo 1.2.3") && text.contains("example/demo"));
    }

    #[test]
    fn requires_protocol_6_when_versions_are_offered() {
        assert_eq!(check(Some(MAGIC_COOKIE_VALUE), Some("5,6")), Ok(()));
        assert_eq!(check(Some(MAGIC_COOKIE_VALUE), None), Ok(()));
        assert!(matches!(
            check(Some(MAGIC_COOKIE_VALUE), Some("5")),
            Err(Refusal::ProtocolNotOffered(_))
        ));
    }

    #[test]
    fn line_has_six_fields_and_unpadded_cert() {
        let l = line("127.0.0.1:1234", Some(&[1, 2, 3, 4]));
        assert_eq!(l, "1|6|tcp|127.0.0.1:1234|grpc|AQIDBA");
        assert_eq!(line("127.0.0.1:1", None).split('|').count(), 6);
    }
}
