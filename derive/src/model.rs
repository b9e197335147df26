//! `#[derive(Model)]`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Error, Fields, GenericArgument, Ident, PathArguments, Result, Type};

use crate::attrs::{FieldAttrs, ModelAttrs};

/// A field mapped to a column.
struct ColumnField {
    ident: Ident,
    ty: Type,
    attrs: FieldAttrs,
    column: String,
}

/// The `Option<T>` inner type, if `ty` is an `Option`.
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(inner) if args.args.len() == 1 => Some(inner),
        _ => None,
    }
}

/// The last path segment's name (`String` for `std::string::String`).
fn last_segment(ty: &Type) -> Option<String> {
    let Type::Path(path) = ty else { return None };
    path.path.segments.last().map(|s| s.ident.to_string())
}

fn base_type(ty: &Type) -> &Type {
    option_inner(ty).unwrap_or(ty)
}

fn type_text(ty: &Type) -> String {
    quote!(#ty).to_string().replace(' ', "")
}

pub(crate) fn expand(input: DeriveInput) -> Result<TokenStream> {
    let name = &input.ident;
    if !input.generics.params.is_empty() {
        return Err(Error::new(
            input.generics.span(),
            "odm models cannot be generic",
        ));
    }
    let Data::Struct(data) = &input.data else {
        return Err(Error::new(
            name.span(),
            "#[derive(Model)] applies to structs with named fields",
        ));
    };
    let Fields::Named(named) = &data.fields else {
        return Err(Error::new(
            name.span(),
            "#[derive(Model)] applies to structs with named fields",
        ));
    };
    let model = ModelAttrs::parse(&input.attrs)?;
    if model.drop_sql.is_some() && model.create_sql.is_none() {
        return Err(Error::new(
            name.span(),
            "drop_sql needs a matching create_sql",
        ));
    }
    let table_name = model
        .table
        .clone()
        .unwrap_or_else(|| name.to_string().to_lowercase());

    let mut columns: Vec<ColumnField> = Vec::new();
    let mut parent: Option<(Ident, Type)> = None;
    let mut key_index: Option<usize> = None;
    for field in &named.named {
        let ident = field.ident.clone().expect("named field");
        let attrs = FieldAttrs::parse(&field.attrs)?;
        if let Some(span) = attrs.parent {
            if parent.is_some() {
                return Err(Error::new(
                    span,
                    format!("model `{name}` has two #[odm(parent)] fields"),
                ));
            }
            if attrs.primary_key.is_some()
                || attrs.max_length.is_some()
                || attrs.column.is_some()
                || attrs.default.is_some()
                || attrs.foreign_key.is_some()
            {
                return Err(Error::new(span, "#[odm(parent)] takes no other attribute"));
            }
            parent = Some((ident, field.ty.clone()));
            continue;
        }
        let base = base_type(&field.ty);
        let base_name = last_segment(base);
        if let Some((_, span)) = attrs.max_length {
            if base_name.as_deref() != Some("String") {
                return Err(Error::new(
                    span,
                    format!(
                        "max_length applies to String fields, not `{}`",
                        type_text(&field.ty)
                    ),
                ));
            }
        }
        if let Some(span) = attrs.json {
            if base_name.as_deref() != Some("Value") {
                return Err(Error::new(
                    span,
                    format!(
                        "json applies to serde_json::Value fields, not `{}`",
                        type_text(&field.ty)
                    ),
                ));
            }
        }
        if let Some((_, span)) = &attrs.choices {
            if base_name.as_deref() != Some("String") {
                return Err(Error::new(
                    *span,
                    format!(
                        "choices applies to String fields, not `{}`",
                        type_text(&field.ty)
                    ),
                ));
            }
        }
        if let Some(span) = attrs.primary_key {
            if let Some(first) = key_index {
                return Err(Error::new(
                    span,
                    format!(
                        "model `{name}` has two primary keys: `{}` and `{}`",
                        columns[first].ident.unraw(),
                        ident.unraw()
                    ),
                ));
            }
            key_index = Some(columns.len());
        }
        let column = attrs
            .column
            .clone()
            .unwrap_or_else(|| ident.unraw().to_string());
        if let Some(other) = columns.iter().find(|c| c.column == column) {
            return Err(Error::new(
                ident.span(),
                format!(
                    "fields `{}` and `{}` both map to column `{column}`",
                    other.ident.unraw(),
                    ident.unraw()
                ),
            ));
        }
        columns.push(ColumnField {
            ident,
            ty: field.ty.clone(),
            attrs,
            column,
        });
    }
    match (&parent, key_index) {
        (Some((pident, _)), Some(k)) => {
            return Err(Error::new(
                columns[k].attrs.primary_key.unwrap_or_else(Span::call_site),
                format!("model `{name}` takes its primary key from its #[odm(parent)] field `{pident}`; remove this primary_key"),
            ));
        }
        (None, None) => {
            return Err(Error::new(
                name.span(),
                format!(
                    "model `{name}` has no primary key; mark one field with #[odm(primary_key)]"
                ),
            ));
        }
        _ => {}
    }

    let consts = columns.iter().map(|c| {
        let const_name = format_ident!("{}", c.ident.unraw().to_string().to_uppercase());
        let ty = &c.ty;
        let column = &c.column;
        let doc =
            format!("Column `{column}` of table `{table_name}`, for query filters and ordering.");
        // a projection reads the declared type, but a key is never NULL in
        // the table even when its field is an `Option` until the insert
        let declared = if c.attrs.primary_key.is_some() {
            quote_spanned! {ty.span()=> <#ty as ::odm::types::ColumnType>::Inner }
        } else {
            quote_spanned! {ty.span()=> #ty }
        };
        quote_spanned! {ty.span()=>
            #[doc = #doc]
            pub const #const_name: ::odm::Field<#name, <#ty as ::odm::types::ColumnType>::Inner, #declared> =
                ::odm::Field::new(#table_name, #column);
        }
    });

    let column_defs = columns.iter().map(column_def);
    let params = columns.iter().map(|c| {
        let ident = &c.ident;
        let ty = &c.ty;
        quote_spanned! {ty.span()=> <#ty as ::odm::types::ColumnType>::param(&self.#ident) }
    });
    let checks = columns.iter().filter_map(|c| {
        let (codes, _) = c.attrs.choices.as_ref()?;
        let ident = &c.ident;
        let column = &c.column;
        Some(quote! { ::odm::types::check_choice_code(#column, &self.#ident, &[#(#codes),*])?; })
    });
    let own_offset: usize = if parent.is_some() { 1 } else { 0 };
    let decodes: Vec<TokenStream> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ident = &c.ident;
            let ty = &c.ty;
            let pos = i + own_offset;
            quote_spanned! {ty.span()=>
                #ident: <#ty as ::odm::types::ColumnType>::decode(__odm_row, __odm_base + #pos)?
            }
        })
        .collect();
    let read_backs = columns.iter().enumerate().map(|(i, c)| {
        let ident = &c.ident;
        let ty = &c.ty;
        let pos = i + own_offset;
        quote_spanned! {ty.span()=>
            self.#ident = <#ty as ::odm::types::ColumnType>::decode(row, #pos)?;
        }
    });
    let read_checks: Vec<TokenStream> = columns
        .iter()
        .filter_map(|c| {
            let (codes, _) = c.attrs.choices.as_ref()?;
            let ident = &c.ident;
            let column = &c.column;
            Some(quote! { ::odm::types::check_choice_code(#column, &__odm_value.#ident, &[#(#codes),*])?; })
        })
        .collect();
    let from_row_body = match &parent {
        Some((pident, pty)) => quote! {
            let __odm_parent = <#pty as ::odm::Model>::from_row_at(__odm_row, __odm_start)?;
            let __odm_base = __odm_start + <#pty as ::odm::Model>::table().width();
            let __odm_value = Self { #pident: __odm_parent, #(#decodes),* };
        },
        None => quote! {
            let __odm_base = __odm_start;
            let __odm_value = Self { #(#decodes),* };
        },
    };
    let bind = opt_str(model.bind.as_deref());
    let create_sql = opt_str(model.create_sql.as_deref());
    let drop_sql = opt_str(model.drop_sql.as_deref());
    let model_name = name.to_string();

    let (key_def, key_pos, key_ty, key_param, parent_fn, parent_ref, parent_mut, value_prefix) =
        match &parent {
            Some((pident, pty)) => {
                let key_def = quote_spanned! {pty.span()=>
                    ::odm::ColumnDef {
                        field: <#pty as ::odm::Model>::KEY_COLUMN,
                        name: <#pty as ::odm::Model>::KEY_COLUMN,
                        sql_type: <<#pty as ::odm::Model>::Key as ::odm::types::ColumnType>::SQL_TYPE,
                        nullable: false,
                        primary_key: true,
                        identity: false,
                        default: ::core::option::Option::None,
                        unique: false,
                        index: false,
                        foreign_key: ::core::option::Option::Some(::odm::ForeignKey {
                            table: <#pty as ::odm::Model>::TABLE_NAME,
                            column: <#pty as ::odm::Model>::KEY_COLUMN,
                        }),
                        choices: ::core::option::Option::None,
                    },
                };
                (
                    key_def,
                    0usize,
                    quote!(<#pty as ::odm::Model>::Key),
                    quote!(::odm::Record::key_param(&self.#pident)),
                    quote!(::core::option::Option::Some(<#pty as ::odm::Model>::table)),
                    quote!(::core::option::Option::Some(&self.#pident as &dyn ::odm::Record)),
                    quote!(::core::option::Option::Some(&mut self.#pident as &mut dyn ::odm::Record)),
                    quote!(::odm::Record::key_param(&self.#pident),),
                )
            }
            None => {
                let k = &columns[key_index.expect("checked above")];
                let ident = &k.ident;
                let ty = &k.ty;
                (
                    quote!(),
                    key_index.expect("checked above"),
                    quote!(<#ty as ::odm::types::ColumnType>::Inner),
                    quote!(::odm::types::ColumnType::param(&self.#ident)),
                    quote!(::core::option::Option::None),
                    quote!(::core::option::Option::None),
                    quote!(::core::option::Option::None),
                    quote!(),
                )
            }
        };
    let lineage = match &parent {
        Some((_, pty)) => quote! { (Self, <#pty as ::odm::Model>::Lineage) },
        None => quote! { (Self, ()) },
    };
    let key_column = if let Some((_, pty)) = &parent {
        quote!(<#pty as ::odm::Model>::KEY_COLUMN)
    } else {
        let c = &columns[key_pos].column;
        quote!(#c)
    };

    Ok(quote! {
        #[allow(dead_code)]
        impl #name {
            #(#consts)*
        }

        impl ::odm::Record for #name {
            fn record_table(&self) -> &'static ::odm::Table {
                <Self as ::odm::Model>::table()
            }

            fn values(&self) -> ::std::vec::Vec<::core::option::Option<&(dyn ::odm::__private::ToSql + ::core::marker::Sync)>> {
                ::std::vec![#value_prefix #(#params),*]
            }

            fn key_param(&self) -> ::core::option::Option<&(dyn ::odm::__private::ToSql + ::core::marker::Sync)> {
                #key_param
            }

            fn validate(&self) -> ::odm::Result<()> {
                #(#checks)*
                ::core::result::Result::Ok(())
            }

            fn read_back(&mut self, row: &::odm::pg::Row) -> ::odm::Result<()> {
                #(#read_backs)*
                ::core::result::Result::Ok(())
            }

            fn parent_record(&self) -> ::core::option::Option<&dyn ::odm::Record> {
                #parent_ref
            }

            fn parent_record_mut(&mut self) -> ::core::option::Option<&mut dyn ::odm::Record> {
                #parent_mut
            }
        }

        impl ::odm::Model for #name {
            type Key = #key_ty;
            type Lineage = #lineage;
            const TABLE_NAME: &'static str = #table_name;
            const KEY_COLUMN: &'static str = #key_column;

            fn table() -> &'static ::odm::Table {
                static TABLE: ::odm::Table = ::odm::Table {
                    model: #model_name,
                    name: #table_name,
                    columns: &[#key_def #(#column_defs),*],
                    primary_key: #key_pos,
                    bind: #bind,
                    create_sql: #create_sql,
                    drop_sql: #drop_sql,
                    parent: #parent_fn,
                    cache: ::odm::model::SqlCache::new(),
                };
                &TABLE
            }

            fn from_row_at(__odm_row: &::odm::pg::Row, __odm_start: usize) -> ::odm::Result<Self> {
                #from_row_body
                #(#read_checks)*
                ::core::result::Result::Ok(__odm_value)
            }
        }
    })
}

fn opt_str(value: Option<&str>) -> TokenStream {
    match value {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    }
}

fn column_def(c: &ColumnField) -> TokenStream {
    let ty = &c.ty;
    let field = c.ident.unraw().to_string();
    let column = &c.column;
    let ct = quote_spanned!(ty.span()=> <#ty as ::odm::types::ColumnType>);
    let sql_type = match (&c.attrs.max_length, &c.attrs.json) {
        (Some((n, _)), _) => {
            let s = format!("VARCHAR({n})");
            quote!(#s)
        }
        (None, Some(_)) => quote!("JSON"),
        _ => quote!(#ct::SQL_TYPE),
    };
    let pk = c.attrs.primary_key.is_some();
    let has_default = c.attrs.default.is_some();
    let default = opt_str(c.attrs.default.as_deref());
    let unique = c.attrs.unique;
    let index = c.attrs.index;
    let foreign_key = match &c.attrs.foreign_key {
        Some((t, col)) => {
            quote!(::core::option::Option::Some(::odm::ForeignKey { table: #t, column: #col }))
        }
        None => quote!(::core::option::Option::None),
    };
    let choices = match &c.attrs.choices {
        Some((codes, _)) => quote!(::core::option::Option::Some(&[#(#codes),*])),
        None => quote!(::core::option::Option::None),
    };
    quote! {
        ::odm::ColumnDef {
            field: #field,
            name: #column,
            sql_type: #sql_type,
            nullable: #ct::NULLABLE,
            primary_key: #pk,
            identity: ::odm::model::key_identity(#pk, #ct::NULLABLE, #ct::IDENTITY, #has_default),
            default: ::odm::model::column_default(#default, #pk, #ct::NULLABLE, #ct::KEY_DEFAULT),
            unique: #unique,
            index: #index,
            foreign_key: #foreign_key,
            choices: #choices,
        }
    }
}
