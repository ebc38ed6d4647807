//! Schemas as plain data. Resources describe themselves with these builders; the protocol layer
//! turns them into tfplugin6 messages. Defaults, validators and plan modifiers live here, on
//! the attribute, where the adapter applies them and the generated docs describe them.

use super::diagnostics::{AttributePath, Diagnostics};
use super::value::{Type, Value};

#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// Bumped when the stored state shape changes; drives UpgradeResourceState.
    pub version: i64,
    pub block: Block,
}

#[derive(Debug, Clone, Default)]
pub struct Block {
    pub description: String,
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
    pub deprecated: bool,
}

#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: String,
    pub ty: Type,
    pub description: String,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    /// When set, using the attribute yields a warning with this text.
    pub deprecation: Option<String>,
    /// The planned value when the configuration leaves the attribute out (needs `computed`).
    pub default: Option<Value>,
    /// Checks on the configured value, run at validate time with the attribute's path.
    pub validators: Vec<Validator>,
    pub plan_modifiers: Vec<PlanModifier>,
}

/// A check of one attribute's known, non-null configured value.
#[derive(Debug, Clone)]
pub struct Validator {
    pub check: Check,
    /// The diagnostic's summary, e.g. "Invalid partition count".
    pub summary: &'static str,
}

#[derive(Debug, Clone)]
pub enum Check {
    /// A whole number in this inclusive range.
    IntRange(i64, i64),
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// A string that compiles as a regular expression.
    Regex,
    /// A Go-style duration such as "30s" or "1h30m".
    Duration,
    /// Anything else: `describe` goes into the docs; `check` reports at the path it is given.
    Custom {
        describe: &'static str,
        check: fn(&Value, &AttributePath, &mut Diagnostics),
    },
}

impl Validator {
    pub fn int_range(min: i64, max: i64, summary: &'static str) -> Validator {
        Validator {
            check: Check::IntRange(min, max),
            summary,
        }
    }
    pub fn one_of(values: &'static [&'static str], summary: &'static str) -> Validator {
        Validator {
            check: Check::OneOf(values),
            summary,
        }
    }
    pub fn regex(summary: &'static str) -> Validator {
        Validator {
            check: Check::Regex,
            summary,
        }
    }
    pub fn duration(summary: &'static str) -> Validator {
        Validator {
            check: Check::Duration,
            summary,
        }
    }
    pub fn custom(
        summary: &'static str,
        describe: &'static str,
        check: fn(&Value, &AttributePath, &mut Diagnostics),
    ) -> Validator {
        Validator {
            check: Check::Custom { describe, check },
            summary,
        }
    }

    /// One sentence for the docs.
    pub fn describe(&self) -> String {
        match &self.check {
            Check::IntRange(min, max) if *max >= i32::MAX as i64 => format!("At least {min}."),
            Check::IntRange(min, max) => format!("From {min} to {max}."),
            Check::OneOf(values) => format!(
                "One of {}.",
                values
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Check::Regex => "A regular expression matched against the whole name.".into(),
            Check::Duration => "A duration such as `30s`, `10m` or `1h30m`.".into(),
            Check::Custom { describe, .. } => describe.to_string(),
        }
    }

    /// Reports at `path` if `value` (known, not null) fails the check.
    pub fn run(&self, value: &Value, path: &AttributePath, diags: &mut Diagnostics) {
        let fail = |diags: &mut Diagnostics, detail: String| {
            diags.attribute_error(path.clone(), self.summary, detail)
        };
        match &self.check {
            Check::IntRange(min, max) => match value {
                Value::Number(n) => match n.as_i64() {
                    Some(i) if (*min..=*max).contains(&i) => {}
                    _ if *max >= i32::MAX as i64 => fail(
                        diags,
                        format!("Must be a whole number of at least {min}, got {n}."),
                    ),
                    _ => fail(
                        diags,
                        format!("Must be a whole number from {min} to {max}, got {n}."),
                    ),
                },
                _ => fail(diags, "Must be a number.".into()),
            },
            Check::OneOf(values) => {
                if !value.as_str().is_some_and(|s| values.contains(&s)) {
                    let got = value.as_str().unwrap_or_default();
                    fail(
                        diags,
                        format!(
                            "{got:?} is not allowed; use {}.",
                            values
                                .iter()
                                .map(|v| format!("{v:?}"))
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ),
                    )
                }
            }
            Check::Regex => {
                if let Some(p) = value.as_str()
                    && let Err(e) = regex::Regex::new(p)
                {
                    fail(diags, e.to_string())
                }
            }
            Check::Duration => {
                if let Some(s) = value.as_str()
                    && let Err(e) = super::timeouts::parse_duration(s)
                {
                    fail(
                        diags,
                        format!(
                            "{s:?} is not a duration: {e}. Write it like \"45s\", \"10m\" or \"1h30m\"."
                        ),
                    )
                }
            }
            Check::Custom { check, .. } => check(value, path, diags),
        }
    }
}

/// How an attribute's planned value is derived, beyond "what the configuration says".
#[derive(Debug, Clone)]
pub enum PlanModifier {
    /// A change replaces the resource.
    RequiresReplace,
    /// A change replaces the resource when `when(prior, planned)` says so.
    RequiresReplaceIf {
        describe: &'static str,
        when: fn(&Value, &Value) -> bool,
    },
    /// A computed attribute keeps its prior value on update instead of becoming unknown.
    UseStateForUnknown,
    /// A computed attribute becomes unknown when any of these attributes changes.
    ComputedIfChanged(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    Single,
    List,
    Set,
}

#[derive(Debug, Clone)]
pub struct NestedBlock {
    pub name: String,
    pub block: Block,
    pub nesting: Nesting,
    pub min_items: i64,
    pub max_items: i64,
    /// A change anywhere inside this block replaces the resource.
    pub requires_replace: bool,
}

impl Attribute {
    fn new(name: &str, ty: Type) -> Attribute {
        Attribute {
            name: name.to_string(),
            ty,
            description: String::new(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            deprecation: None,
            default: None,
            validators: Vec::new(),
            plan_modifiers: Vec::new(),
        }
    }
    pub fn required(name: &str, ty: Type) -> Attribute {
        Attribute {
            required: true,
            ..Attribute::new(name, ty)
        }
    }
    pub fn optional(name: &str, ty: Type) -> Attribute {
        Attribute {
            optional: true,
            ..Attribute::new(name, ty)
        }
    }
    pub fn computed(name: &str, ty: Type) -> Attribute {
        Attribute {
            computed: true,
            ..Attribute::new(name, ty)
        }
    }
    /// Optional, and filled in by the provider when the configuration leaves it out.
    pub fn optional_computed(name: &str, ty: Type) -> Attribute {
        Attribute {
            optional: true,
            computed: true,
            ..Attribute::new(name, ty)
        }
    }
    pub fn describe(mut self, text: &str) -> Attribute {
        self.description = text.to_string();
        self
    }
    pub fn sensitive(mut self) -> Attribute {
        self.sensitive = true;
        self
    }
    pub fn requires_replace(mut self) -> Attribute {
        self.plan_modifiers.push(PlanModifier::RequiresReplace);
        self
    }
    pub fn requires_replace_if(
        mut self,
        describe: &'static str,
        when: fn(&Value, &Value) -> bool,
    ) -> Attribute {
        self.plan_modifiers
            .push(PlanModifier::RequiresReplaceIf { describe, when });
        self
    }
    pub fn use_state_for_unknown(mut self) -> Attribute {
        self.plan_modifiers.push(PlanModifier::UseStateForUnknown);
        self
    }
    pub fn computed_if_changed(mut self, attributes: &'static [&'static str]) -> Attribute {
        self.plan_modifiers
            .push(PlanModifier::ComputedIfChanged(attributes));
        self
    }
    /// The value planned when the configuration leaves it out; makes the attribute computed.
    pub fn default(mut self, value: Value) -> Attribute {
        self.computed = true;
        self.default = Some(value);
        self
    }
    pub fn validate(mut self, validator: Validator) -> Attribute {
        self.validators.push(validator);
        self
    }
    pub fn has_modifier(&self, pick: fn(&PlanModifier) -> bool) -> bool {
        self.plan_modifiers.iter().any(pick)
    }
    /// The description with defaults, allowed values and replacement rules appended, as shown
    /// to users (plans, `providers schema -json`, generated docs).
    pub fn full_description(&self) -> String {
        let mut parts = vec![self.description.clone()];
        for v in &self.validators {
            parts.push(v.describe());
        }
        if let Some(d) = &self.default {
            parts.push(format!("Default: `{}`.", d.render_hcl()));
        }
        for m in &self.plan_modifiers {
            match m {
                PlanModifier::RequiresReplace => {
                    parts.push("Changing it replaces the resource.".into())
                }
                PlanModifier::RequiresReplaceIf { describe, .. } => {
                    parts.push(describe.to_string())
                }
                PlanModifier::UseStateForUnknown | PlanModifier::ComputedIfChanged(_) => {}
            }
        }
        parts.retain(|p| !p.is_empty());
        parts.join(" ")
    }
    pub fn deprecated(mut self, message: &str) -> Attribute {
        self.deprecation = Some(message.to_string());
        self
    }
}

impl NestedBlock {
    pub fn single(name: &str, block: Block) -> NestedBlock {
        NestedBlock {
            name: name.to_string(),
            block,
            nesting: Nesting::Single,
            min_items: 0,
            max_items: 0,
            requires_replace: false,
        }
    }
    pub fn list(name: &str, block: Block) -> NestedBlock {
        NestedBlock {
            nesting: Nesting::List,
            ..NestedBlock::single(name, block)
        }
    }
    pub fn requires_replace(mut self) -> NestedBlock {
        self.requires_replace = true;
        self
    }
}

impl Block {
    pub fn new(description: &str) -> Block {
        Block {
            description: description.to_string(),
            ..Block::default()
        }
    }
    pub fn attribute(mut self, attribute: Attribute) -> Block {
        self.attributes.push(attribute);
        self
    }
    pub fn block(mut self, block: NestedBlock) -> Block {
        self.blocks.push(block);
        self
    }

    /// The object type of this block's values: attributes plus nested blocks.
    pub fn implied_type(&self) -> Type {
        let mut attrs = std::collections::BTreeMap::new();
        for a in &self.attributes {
            attrs.insert(a.name.clone(), a.ty.clone());
        }
        for b in &self.blocks {
            let inner = b.block.implied_type();
            let ty = match b.nesting {
                Nesting::Single => inner,
                Nesting::List => Type::list(inner),
                Nesting::Set => Type::set(inner),
            };
            attrs.insert(b.name.clone(), ty);
        }
        Type::Object(attrs)
    }

    pub fn find_attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implied_type_includes_nested_blocks_by_nesting_mode() {
        let block = Block::new("t")
            .attribute(Attribute::required("name", Type::String))
            .block(NestedBlock::single(
                "tls",
                Block::new("").attribute(Attribute::optional("enabled", Type::Bool)),
            ))
            .block(NestedBlock::list(
                "rule",
                Block::new("").attribute(Attribute::optional("host", Type::String)),
            ));
        let ty = block.implied_type();
        assert_eq!(
            ty.to_json(),
            serde_json::json!(["object", {
                "name": "string",
                "tls": ["object", {"enabled": "bool"}],
                "rule": ["list", ["object", {"host": "string"}]]
            }])
        );
    }

    #[test]
    fn builders_set_flags() {
        let a = Attribute::optional("x", Type::Number)
            .sensitive()
            .requires_replace()
            .default(Value::int(1));
        assert!(a.optional && a.computed && a.sensitive && !a.required);
        assert!(a.has_modifier(|m| matches!(m, PlanModifier::RequiresReplace)));
        assert_eq!(
            a.full_description(),
            "Default: `1`. Changing it replaces the resource."
        );
    }

    #[test]
    fn validators_report_at_the_path_with_their_summary() {
        let mut d = Diagnostics::default();
        let at = AttributePath::root("workers");
        Validator::int_range(1, 64, "Invalid worker count").run(&Value::int(0), &at, &mut d);
        Validator::one_of(&["a", "b"], "Invalid mode").run(&Value::string("c"), &at, &mut d);
        Validator::regex("Invalid regular expression").run(&Value::string("("), &at, &mut d);
        Validator::duration("Invalid duration").run(&Value::string("5 minutes"), &at, &mut d);
        let summaries: Vec<&str> = d.0.iter().map(|x| x.summary.as_str()).collect();
        assert_eq!(
            summaries,
            [
                "Invalid worker count",
                "Invalid mode",
                "Invalid regular expression",
                "Invalid duration"
            ]
        );
        let mut ok = Diagnostics::default();
        Validator::int_range(1, 64, "x").run(&Value::int(64), &at, &mut ok);
        assert!(ok.0.is_empty());
    }
}
