//! Parsing of `#[odm(...)]` attributes on models, fields and enums.

use proc_macro2::Span;
use syn::{Attribute, LitInt, LitStr, Result};

/// Model-level attributes: `#[odm(table = "...", bind = "...", create_sql = "...", drop_sql = "...")]`.
#[derive(Default)]
pub(crate) struct ModelAttrs {
    pub(crate) table: Option<String>,
    pub(crate) bind: Option<String>,
    pub(crate) create_sql: Option<String>,
    pub(crate) drop_sql: Option<String>,
}

/// Field-level attributes.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    pub(crate) primary_key: Option<Span>,
    pub(crate) max_length: Option<(u32, Span)>,
    pub(crate) default: Option<String>,
    pub(crate) unique: bool,
    pub(crate) index: bool,
    pub(crate) column: Option<String>,
    pub(crate) foreign_key: Option<(String, String)>,
    pub(crate) json: Option<Span>,
    pub(crate) choices: Option<(Vec<String>, Span)>,
    pub(crate) parent: Option<Span>,
    /// `default_fn = "path::to::fn"`: the function and the literal's span.
    pub(crate) default_fn: Option<(syn::ExprPath, Span)>,
}

/// Enum-level attributes of a `Choice`: `#[odm(text)]`.
#[derive(Default)]
pub(crate) struct ChoiceAttrs {
    pub(crate) text: bool,
}

fn odm_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("odm"))
}

fn unknown(meta: &syn::meta::ParseNestedMeta<'_>, allowed: &str) -> syn::Error {
    let name = meta
        .path
        .get_ident()
        .map(|i| i.to_string())
        .unwrap_or_else(|| "?".into());
    meta.error(format!(
        "unknown odm attribute `{name}`; expected one of: {allowed}"
    ))
}

fn non_empty(lit: LitStr, what: &str) -> Result<String> {
    let value = lit.value();
    if value.trim().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!("{what} must not be empty"),
        ));
    }
    Ok(value)
}

impl ModelAttrs {
    pub(crate) fn parse(attrs: &[Attribute]) -> Result<ModelAttrs> {
        let mut out = ModelAttrs::default();
        for attr in odm_attrs(attrs) {
            attr.parse_nested_meta(|meta| {
                let key = meta
                    .path
                    .get_ident()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                match key.as_str() {
                    "table" => out.table = Some(non_empty(meta.value()?.parse()?, "table")?),
                    "bind" => out.bind = Some(non_empty(meta.value()?.parse()?, "bind")?),
                    "create_sql" => {
                        out.create_sql = Some(non_empty(meta.value()?.parse()?, "create_sql")?)
                    }
                    "drop_sql" => {
                        out.drop_sql = Some(non_empty(meta.value()?.parse()?, "drop_sql")?)
                    }
                    _ => return Err(unknown(&meta, "table, bind, create_sql, drop_sql")),
                }
                Ok(())
            })?;
        }
        Ok(out)
    }
}

impl FieldAttrs {
    pub(crate) fn parse(attrs: &[Attribute]) -> Result<FieldAttrs> {
        let mut out = FieldAttrs::default();
        for attr in odm_attrs(attrs) {
            attr.parse_nested_meta(|meta| {
                let key = meta.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
                let span = meta.path.get_ident().map(|i| i.span()).unwrap_or_else(Span::call_site);
                match key.as_str() {
                    "primary_key" => out.primary_key = Some(span),
                    "unique" => out.unique = true,
                    "index" => out.index = true,
                    "json" => out.json = Some(span),
                    "parent" => out.parent = Some(span),
                    "max_length" => {
                        let lit: LitInt = meta.value()?.parse()?;
                        let n: u32 = lit.base10_parse()?;
                        if n == 0 {
                            return Err(syn::Error::new(lit.span(), "max_length must be at least 1"));
                        }
                        out.max_length = Some((n, span));
                    }
                    "default" => out.default = Some(non_empty(meta.value()?.parse()?, "default")?),
                    "default_fn" => {
                        let lit: LitStr = meta.value()?.parse()?;
                        let path: syn::ExprPath = lit.parse().map_err(|_| {
                            syn::Error::new(
                                lit.span(),
                                "default_fn must be a path to a function, e.g. \"uuid::Uuid::new_v4\"",
                            )
                        })?;
                        out.default_fn = Some((path, lit.span()));
                    }
                    "column" => out.column = Some(non_empty(meta.value()?.parse()?, "column")?),
                    "foreign_key" => {
                        let lit: LitStr = meta.value()?.parse()?;
                        let value = lit.value();
                        match value.rsplit_once('.') {
                            Some((t, c)) if !t.is_empty() && !c.is_empty() => {
                                out.foreign_key = Some((t.to_owned(), c.to_owned()))
                            }
                            _ => {
                                return Err(syn::Error::new(
                                    lit.span(),
                                    "foreign_key must be written as \"table.column\"",
                                ))
                            }
                        }
                    }
                    "choices" => {
                        let lit: LitStr = meta.value()?.parse()?;
                        let codes: Vec<String> = lit.value().split(',').map(|c| c.trim().to_owned()).collect();
                        if codes.iter().any(|c| c.is_empty()) {
                            return Err(syn::Error::new(
                                lit.span(),
                                "choices must be a comma-separated list of non-empty codes, e.g. \"a,b,c\"",
                            ));
                        }
                        out.choices = Some((codes, span));
                    }
                    _ => {
                        return Err(unknown(
                            &meta,
                            "primary_key, max_length, default, default_fn, unique, index, column, foreign_key, json, choices, parent",
                        ))
                    }
                }
                Ok(())
            })?;
        }
        Ok(out)
    }
}

impl ChoiceAttrs {
    pub(crate) fn parse(attrs: &[Attribute]) -> Result<ChoiceAttrs> {
        let mut out = ChoiceAttrs::default();
        for attr in odm_attrs(attrs) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("text") {
                    out.text = true;
                    Ok(())
                } else {
                    Err(unknown(&meta, "text"))
                }
            })?;
        }
        Ok(out)
    }
}
