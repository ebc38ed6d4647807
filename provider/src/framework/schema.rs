//! Schemas as plain data. Resources describe themselves with these builders; the protocol layer
//! turns them into tfplugin6 messages.

use super::value::Type;

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
    /// A change to this attribute replaces the resource.
    pub force_new: bool,
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
    pub force_new: bool,
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
            force_new: false,
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
    pub fn force_new(mut self) -> Attribute {
        self.force_new = true;
        self
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
            force_new: false,
        }
    }
    pub fn list(name: &str, block: Block) -> NestedBlock {
        NestedBlock {
            nesting: Nesting::List,
            ..NestedBlock::single(name, block)
        }
    }
    pub fn force_new(mut self) -> NestedBlock {
        self.force_new = true;
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
        let a = Attribute::optional_computed("x", Type::Number)
            .sensitive()
            .force_new();
        assert!(a.optional && a.computed && a.sensitive && a.force_new && !a.required);
    }
}
