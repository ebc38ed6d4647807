//! `#[derive(Model)]` for structs whose fields are a Terraform object's attributes.
//!
//! Each named field becomes the attribute of the same name (a leading `r#` is dropped), so a
//! resource reads `model.partitions`, and a misspelled attribute is a compile error. The field
//! types implement `tfplugin::model::TfValue`; the generated code only walks the fields.

use proc_macro::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields, parse_macro_input};

#[proc_macro_derive(Model)]
pub fn derive_model(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let name = &input.ident;
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => named.named.iter().collect::<Vec<_>>(),
            _ => {
                return syn::Error::new_spanned(name, "Model needs a struct with named fields")
                    .to_compile_error()
                    .into();
            }
        },
        _ => {
            return syn::Error::new_spanned(name, "Model can only be derived for structs")
                .to_compile_error()
                .into();
        }
    };
    let idents: Vec<_> = fields.iter().map(|f| f.ident.clone().unwrap()).collect();
    let names: Vec<String> = idents
        .iter()
        .map(|i| i.to_string().trim_start_matches("r#").to_string())
        .collect();

    let expanded = quote! {
        impl ::tfplugin::model::Model for #name {
            const ATTRIBUTES: &'static [&'static str] = &[#(#names),*];

            fn from_value(
                value: &::tfplugin::Value,
            ) -> ::std::result::Result<Self, ::tfplugin::model::ModelError> {
                let ::tfplugin::Value::Object(map) = value else {
                    return ::std::result::Result::Err(::tfplugin::model::ModelError::not_an_object(value));
                };
                static NULL: ::tfplugin::Value = ::tfplugin::Value::Null;
                ::std::result::Result::Ok(#name {
                    #(
                        #idents: ::tfplugin::model::TfValue::decode(map.get(#names).unwrap_or(&NULL))
                            .map_err(|e| e.inside(#names))?,
                    )*
                })
            }

            fn to_value(&self) -> ::tfplugin::Value {
                let mut map = ::std::collections::BTreeMap::new();
                #(
                    map.insert(#names.to_string(), ::tfplugin::model::TfValue::encode(&self.#idents));
                )*
                ::tfplugin::Value::Object(map)
            }
        }

        impl ::tfplugin::model::TfValue for #name {
            fn decode(
                value: &::tfplugin::Value,
            ) -> ::std::result::Result<Self, ::tfplugin::model::ModelError> {
                <Self as ::tfplugin::model::Model>::from_value(value)
            }
            fn encode(&self) -> ::tfplugin::Value {
                <Self as ::tfplugin::model::Model>::to_value(self)
            }
        }
    };
    expanded.into()
}
