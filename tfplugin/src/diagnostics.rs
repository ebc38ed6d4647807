//! Diagnostics that point at an attribute, the way Terraform shows them under the config line.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    Attribute(String),
    Key(String),
    Index(i64),
}

/// A path into a resource's configuration, e.g. `cluster[0].bootstrap_servers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributePath(pub Vec<PathStep>);

impl AttributePath {
    pub fn root(name: &str) -> AttributePath {
        AttributePath(vec![PathStep::Attribute(name.to_string())])
    }
    pub fn attr(mut self, name: &str) -> AttributePath {
        self.0.push(PathStep::Attribute(name.to_string()));
        self
    }
    pub fn key(mut self, key: &str) -> AttributePath {
        self.0.push(PathStep::Key(key.to_string()));
        self
    }
    pub fn index(mut self, i: i64) -> AttributePath {
        self.0.push(PathStep::Index(i));
        self
    }
}

impl fmt::Display for AttributePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                PathStep::Attribute(a) if i == 0 => write!(f, "{a}")?,
                PathStep::Attribute(a) => write!(f, ".{a}")?,
                PathStep::Key(k) => write!(f, "[{k:?}]")?,
                PathStep::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub summary: String,
    pub detail: String,
    pub path: Option<AttributePath>,
}

/// The diagnostics one request produced.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Error, summary.into(), detail.into(), None);
    }
    pub fn attribute_error(
        &mut self,
        path: AttributePath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.push(Severity::Error, summary.into(), detail.into(), Some(path));
    }
    pub fn attribute_warning(
        &mut self,
        path: AttributePath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.push(Severity::Warning, summary.into(), detail.into(), Some(path));
    }
    fn push(
        &mut self,
        severity: Severity,
        summary: String,
        detail: String,
        path: Option<AttributePath>,
    ) {
        self.0.push(Diagnostic {
            severity,
            summary,
            detail,
            path,
        });
    }
    /// An error diagnostic from a typed error, its detail the whole cause chain (each cause
    /// not already part of the message before it).
    pub fn error_from(
        &mut self,
        path: Option<AttributePath>,
        summary: impl Into<String>,
        error: &dyn std::error::Error,
    ) {
        self.push(Severity::Error, summary.into(), cause_chain(error), path);
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }
}

/// `error: cause: cause...`, skipping causes the message already quotes.
pub fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
        next = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("writing spec.json")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn cause_chain_keeps_every_cause_once() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(cause_chain(&e), "writing spec.json: disk full");
        let mut d = Diagnostics::default();
        d.error_from(
            Some(AttributePath::root("launcher")),
            "Cannot provision",
            &e,
        );
        assert_eq!(d.0[0].detail, "writing spec.json: disk full");
    }

    #[test]
    fn path_renders_like_terraform_addresses() {
        let p = AttributePath::root("cluster")
            .index(0)
            .attr("sasl")
            .key("x");
        assert_eq!(p.to_string(), "cluster[0].sasl[\"x\"]");
    }

    #[test]
    fn errors_are_counted_warnings_are_not() {
        let mut d = Diagnostics::default();
        d.attribute_warning(AttributePath::root("a"), "w", "");
        assert!(!d.has_errors());
        d.error("e", "");
        assert!(d.has_errors());
    }
}
